package bacalhau

import "go.yaml.in/yaml/v3"

// Looks says whether a document that is not a cuivre job spec reads as a
// Bacalhau job: a mapping with Bacalhau's capitalised Tasks, or Name and
// Type, or the APIVersion and Spec of its format before v1. It lets a
// command that refuses the document say to convert it (Convert explains
// what it cannot).
func Looks(data []byte) bool {
	if len(data) > maxJobSize {
		return false
	}
	var top map[string]any
	if yaml.Unmarshal(data, &top) != nil {
		return false
	}
	_, tasks := top["Tasks"]
	_, name := top["Name"]
	_, typ := top["Type"]
	_, version := top["APIVersion"]
	_, spec := top["Spec"]
	return tasks || (name && typ) || (version && spec)
}

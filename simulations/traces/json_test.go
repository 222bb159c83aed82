package traces

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cuivre/cuivre/internal/fuzzguard"
)

var jsonSeeds = []string{
	`{"time":"601000000","type":"0","collection_id":"1001","scheduling_class":"1","missing_type":null,"collection_type":"0","priority":"200","alloc_collection_id":"0","instance_index":"0","machine_id":"0","alloc_instance_index":"-1","resource_request":{"cpus":0.015625,"memory":0.00390625},"constraint":[]}`,
	`{"time":620000000,"type":3,"collection_id":1001,"collection_type":0,"instance_index":3,"resource_request":{"cpus":0.015625,"memory":0.00390625}}`,
	` { "time" : 1 , "type" : "SCHEDULE" , "resource_request" : null } `,
	`{"time":1,"constraint":[{"name":"a\"]}","value":"","relation":0},{"name":"b","value":"{[","relation":6}],"type":2}`,
	`{"time":1,"Type":5}`,
	`{"time":"1\u0030"}`,
	`{"time":1,"type":2,}`,
	`{"time":1 "type":2}`,
	`{"time":1,"constraint":[}`,
	`{"time":1,"priority":2x}`,
	`{"time":tru}`,
	`{"time":1}{"time":2}`,
	`{"resource_request":{"cpus":"0.5","MEMORY":1}}`,
	`{}`,
	`[]`,
	``,
}

// TestConvertQuickJSON checks the quick reader of events against
// encoding/json on the seeds of FuzzConvertJSON: the same fields when both
// read a line, and the lines encoding/json rejects rejected.
func TestConvertQuickJSON(t *testing.T) {
	for _, s := range jsonSeeds {
		checkQuick(t, []byte(s))
	}
	for _, bad := range []string{`{"time":1,"type":2,}`, `{"time":1 "type":2}`, `{"time":1,"constraint":[}`, `{"time":1,"priority":2x}`, `{"time":tru}`, `{"time":1}{"time":2}`, `[]`, ``} {
		var j gJSON
		if decodeEvent([]byte(bad), &j) == nil {
			t.Errorf("%s: read as %+v, want an error", bad, j)
		}
	}
}

func checkQuick(t *testing.T, b []byte) {
	var slow, got gJSON
	slowErr := json.Unmarshal(b, &slow)
	err := decodeEvent(b, &got)
	if (err == nil) != (slowErr == nil) {
		t.Fatalf("%q: error %v, encoding/json's %v", b, err, slowErr)
	}
	if err == nil {
		if diff := cmp.Diff(slow, got, cmp.AllowUnexported(flexText{})); diff != "" {
			t.Fatalf("%q: (-encoding/json +quick):\n%s", b, diff)
		}
	}
}

// FuzzConvertJSON holds the quick reader of events to encoding/json.
func FuzzConvertJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		defer fuzzguard.Start()()
		var got gJSON
		if quickEvent(b, &got) {
			var slow gJSON
			if err := json.Unmarshal(b, &slow); err == nil {
				if diff := cmp.Diff(slow, got, cmp.AllowUnexported(flexText{})); diff != "" {
					t.Fatalf("%q: (-encoding/json +quick):\n%s", b, diff)
				}
			}
		}
		checkQuick(t, b)
	})
}

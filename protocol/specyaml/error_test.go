package specyaml

import "testing"

func TestSpecErrorFormat(t *testing.T) {
	tests := []struct {
		err  SpecError
		want string
	}{
		{SpecError{File: "job.yaml", Line: 12, Column: 5, Path: "task.resources.memory", Msg: "bad"}, "job.yaml:12:5: task.resources.memory: bad"},
		{SpecError{File: "job.yaml", Line: 3, Msg: "bad"}, "job.yaml:3: bad"},
		{SpecError{File: "job.yaml", Msg: "empty"}, "job.yaml: empty"},
		{SpecError{Line: 12, Column: 5, Path: "count", Msg: "bad"}, "line 12, column 5: count: bad"},
		{SpecError{Line: 3, Msg: "bad"}, "line 3: bad"},
		{SpecError{Path: "task.module", Msg: "bad"}, "task.module: bad"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

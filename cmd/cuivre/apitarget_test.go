package main

import (
	"io/fs"
	"strings"
	"testing"
)

// TestAPITarget: where the CLI finds a node's API and its token: a flag
// before the environment, the environment before the data dir; a token
// alone, or an address alone, is refused saying what is missing.
func TestAPITarget(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	files := func(name string) ([]byte, error) {
		switch name {
		case "tok":
			return []byte("from-file\n"), nil
		case "empty":
			return []byte("\n"), nil
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	for _, c := range []struct {
		name             string
		flags            apiTarget
		env              func(string) string
		base, token, err string
		remote           bool
	}{
		{name: "nothing: the data dir", env: env()},
		{name: "a token in the environment alone: the data dir", env: env(apiTokenEnv, "t")},
		{name: "flags", flags: apiTarget{addr: "http://127.0.0.1:4243", token: "f"}, env: env(),
			base: "http://127.0.0.1:4243", token: "f", remote: true},
		{name: "environment", env: env(apiEnv, "http://127.0.0.1:5000", apiTokenEnv, "e"),
			base: "http://127.0.0.1:5000", token: "e", remote: true},
		{name: "flag address over the environment's, token from the environment", flags: apiTarget{addr: "127.0.0.1:4243"},
			env: env(apiEnv, "http://127.0.0.1:5000", apiTokenEnv, "e"), base: "http://127.0.0.1:4243", token: "e", remote: true},
		{name: "flag token over the environment's", flags: apiTarget{token: "f"}, env: env(apiEnv, "127.0.0.1:5000", apiTokenEnv, "e"),
			base: "http://127.0.0.1:5000", token: "f", remote: true},
		{name: "token file over the environment's", flags: apiTarget{addr: "https://[::1]:4243/", tokenFile: "tok"}, env: env(apiTokenEnv, "e"),
			base: "https://[::1]:4243", token: "from-file", remote: true},
		{name: "an address without a token", flags: apiTarget{addr: "127.0.0.1:4243"}, env: env(),
			err: "--api 127.0.0.1:4243 needs the node's API token: give --api-token, --api-token-file or CUIVRE_API_TOKEN"},
		{name: "an environment address without a token", env: env(apiEnv, "127.0.0.1:4243"), err: "CUIVRE_API 127.0.0.1:4243 needs the node's API token"},
		{name: "a token flag without an address", flags: apiTarget{token: "f"}, env: env(), err: "go with --api"},
		{name: "both token flags", flags: apiTarget{addr: "127.0.0.1:1", token: "f", tokenFile: "tok"}, env: env(), err: "not both"},
		{name: "a token file missing", flags: apiTarget{addr: "127.0.0.1:1", tokenFile: "nope"}, env: env(), err: "--api-token-file: open nope"},
		{name: "a token file empty", flags: apiTarget{addr: "127.0.0.1:1", tokenFile: "empty"}, env: env(), err: "--api-token-file empty is empty"},
		{name: "a scheme of another kind", flags: apiTarget{addr: "ftp://127.0.0.1:1", token: "f"}, env: env(), err: `--api "ftp://127.0.0.1:1": scheme ftp`},
		{name: "a path", flags: apiTarget{addr: "http://127.0.0.1:1/v1", token: "f"}, env: env(), err: "no path"},
	} {
		t.Run(c.name, func(t *testing.T) {
			base, token, remote, err := c.flags.resolve(c.env, files)
			if !wantErr(t, err, c.err) {
				return
			}
			if base != c.base || token != c.token || remote != c.remote {
				t.Fatalf("got %q %q %t; want %q %q %t", base, token, remote, c.base, c.token, c.remote)
			}
		})
	}
}

// wantErr checks a case's error against the text it should hold, if any;
// it reports whether the case goes on, to check a result.
func wantErr(t *testing.T, err error, want string) bool {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatal(err)
	case want == "":
		return true
	case err == nil || !strings.Contains(err.Error(), want):
		t.Fatalf("error %v, want %q", err, want)
	}
	return false
}

package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestDocsNameWhatExists: every `make TARGET` and `cuivre COMMAND ...` that
// the docs, the examples and the commands' own help name exists: a target of
// the Makefile, a command of the CLI (a group followed by a word that is none
// of its subcommands is a command that does not exist).
func TestDocsNameWhatExists(t *testing.T) {
	top := filepath.Join("..", "..")
	targets := makeTargets(t, filepath.Join(top, "Makefile"))
	texts := map[string]string{} // where -> text
	for _, pattern := range []string{"*.md", "docs/*.md", "examples/*/*.md", "examples/*/*.yaml", "examples/*/*.json", "examples/*/*.service", "simulations/scenarios/*.yaml"} {
		files, err := filepath.Glob(filepath.Join(top, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(top, f)
			texts[rel] = string(b)
		}
	}
	walk(newRootCmd(), func(c *cobra.Command) {
		texts["help of `"+c.CommandPath()+"`"] = c.Short + "\n" + c.Long + "\n```\n" + c.Example + "\n```\n"
	})
	if len(texts) < 20 {
		t.Fatalf("read %d texts: is the test run from its package's directory?", len(texts))
	}

	root := newRootCmd()
	seen := 0
	for where, text := range texts {
		for _, code := range codeOf(text) {
			for _, m := range makeRef.FindAllStringSubmatch(code, -1) {
				seen++
				if !targets[m[1]] {
					t.Errorf("%s names `make %s`: the Makefile has no such target", where, m[1])
				}
			}
			for _, m := range cuivreRef.FindAllStringSubmatch(code, -1) {
				seen++
				if why := commandMissing(root, strings.Fields(m[1])); why != "" {
					t.Errorf("%s names `cuivre %s`: %s", where, m[1], why)
				}
			}
		}
	}
	if seen < 50 {
		t.Errorf("found %d references to check in %d texts: the patterns no longer match the docs", seen, len(texts))
	}
}

var (
	inlineCode = regexp.MustCompile("`([^`]+)`")
	fenced     = regexp.MustCompile("(?ms)^\\s*```[^\\n]*\\n(.*?)^\\s*```")
	// A command is the words after cuivre up to the first that is not a
	// plain lower-case word (a flag, a path, an argument in capitals).
	cuivreRef = regexp.MustCompile(`(?m)(?:^|[\s$])(?:bin/)?cuivre((?: [a-z][a-z0-9-]*)+)(?:[\s/.=]|$)`)
	makeRef   = regexp.MustCompile(`(?m)(?:^|[\s$])make ([a-z][a-z0-9-]*)\b`)
)

// codeOf returns the code of a text: its fenced blocks and inline spans,
// where commands are named (prose says "make" and "cuivre" otherwise).
func codeOf(text string) []string {
	var out []string
	for _, m := range fenced.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	text = fenced.ReplaceAllString(text, "")
	for _, m := range inlineCode.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}

// commandMissing says why words do not name a command of root, or "".
func commandMissing(root *cobra.Command, words []string) string {
	c, rest, err := root.Find(words)
	if err != nil {
		return err.Error()
	}
	if c.HasSubCommands() && len(rest) > 0 {
		return "`" + c.CommandPath() + "` has no subcommand " + rest[0]
	}
	return ""
}

func makeTargets(t *testing.T, makefile string) map[string]bool {
	b, err := os.ReadFile(makefile)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z][a-z0-9_-]*)\s*:`).FindAllStringSubmatch(string(b), -1) {
		out[m[1]] = true
	}
	return out
}

func walk(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, s := range c.Commands() {
		walk(s, f)
	}
}

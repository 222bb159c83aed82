package exec_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/cuivre/cuivre/node/exec"
	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/protocol/wire"
)

// newExecutor returns an executor closed at the end of the test, sharing the
// machine's compilation cache for tests unless cfg names another cache.
func newExecutor(tb testing.TB, cfg exec.Config) *exec.Executor {
	tb.Helper()
	return exectest.NewExecutor(tb, cfg)
}

// add adds bin to e and returns its CID.
func add(tb testing.TB, e *exec.Executor, bin []byte) cid.Cid {
	tb.Helper()
	c := wire.SumCID(bin)
	if err := e.Add(context.Background(), c, bin); err != nil {
		tb.Fatalf("Add: %v", err)
	}
	return c
}

// Hand-assembled modules, small enough to read and to compile at once, for
// what exectest's modules do not cover: Add's refusals and the initial
// memory.

// wasmBinary returns a module made of sections, each built by section.
func wasmBinary(sections ...[]byte) []byte {
	return bytes.Join(append([][]byte{[]byte("\x00asm\x01\x00\x00\x00")}, sections...), nil)
}

// section returns one section; its body must be shorter than 128 bytes.
func section(id byte, body ...byte) []byte {
	return append([]byte{id, byte(len(body))}, body...)
}

var (
	typeVoid     = section(1, 0x01, 0x60, 0x00, 0x00) // one type: () -> ()
	funcOne      = section(3, 0x01, 0x00)             // one function of type 0
	exportStart  = section(7, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00)
	bodyReturn   = section(10, 0x01, 0x02, 0x00, 0x0b)
	memory100    = section(5, 0x01, 0x00, 0x64) // 100 pages, 6.25 MiB
	tinyModule   = exectest.Empty()
	trapModule   = exectest.Trap()
	spinModule   = exectest.Loop()
	bigMemModule = wasmBinary(typeVoid, funcOne, memory100, exportStart, bodyReturn)
	// noStartModule exports its function as "begin", not "_start".
	noStartModule = wasmBinary(typeVoid, funcOne, section(7, 0x01, 0x05, 'b', 'e', 'g', 'i', 'n', 0x00, 0x00), bodyReturn)
	// envImportModule imports env.f, which no executor provides.
	envImportModule = wasmBinary(typeVoid,
		section(2, 0x01, 0x03, 'e', 'n', 'v', 0x01, 'f', 0x00, 0x00),
		funcOne,
		section(7, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x01),
		bodyReturn)
)

// variant returns tinyModule with a custom section named name: another
// module, another CID, the same behaviour.
func variant(name string) []byte {
	return append(bytes.Clone(tinyModule), section(0, append([]byte{byte(len(name))}, name...)...)...)
}

package exectest

import (
	"bytes"
	"encoding/binary"
)

// The modules below are written by hand, each under its text format (WAT);
// the bytes follow the binary format of WebAssembly 1.0, section by section.
// Each returns a new slice, which the caller owns. The WASI functions they
// import are those of wasi_snapshot_preview1:
//
//	fd_write(fd, iovs, iovs_len, nwritten: i32) -> errno: i32
//	poll_oneoff(in, out, nsubscriptions, nevents: i32) -> errno: i32
//	proc_exit(code: i32)

// Empty returns a WASI command whose _start returns at once: a job that
// succeeds with no output, in no time.
//
//	(module
//	  (func (export "_start")))
func Empty() []byte {
	return wasm(
		section(secType, vec(funcType(nil, nil))), // type 0: () -> ()
		section(secFunc, vec(u32(0))),             // func 0: type 0
		section(secExport, vec(export("_start", kindFunc, 0))),
		section(secCode, vec(body(nil, []byte{end}))),
	)
}

// Loop returns a WASI command whose _start loops forever without calling the
// host: a job that runs until it is killed, which only a deadline enforced
// inside guest code (wazero's WithCloseOnContextDone) can stop.
//
//	(module
//	  (func (export "_start")
//	    (loop $spin (br $spin))))
func Loop() []byte {
	return wasm(
		section(secType, vec(funcType(nil, nil))),
		section(secFunc, vec(u32(0))),
		section(secExport, vec(export("_start", kindFunc, 0))),
		section(secCode, vec(body(nil,
			[]byte{opLoop, blockVoid}, // loop $spin
			[]byte{opBr, 0},           // br $spin
			[]byte{end, end},
		))),
	)
}

// Trap returns a WASI command whose _start traps at once.
//
//	(module
//	  (func (export "_start") unreachable))
func Trap() []byte {
	return wasm(
		section(secType, vec(funcType(nil, nil))),
		section(secFunc, vec(u32(0))),
		section(secExport, vec(export("_start", kindFunc, 0))),
		section(secCode, vec(body(nil, []byte{opUnreachable, end}))),
	)
}

// Exit returns a WASI command that exits with status code at once, through
// proc_exit, writing nothing.
//
//	(module
//	  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
//	  (func (export "_start")
//	    (call $proc_exit (i32.const code))
//	    unreachable))
func Exit(code uint32) []byte {
	return wasm(
		section(secType, vec(
			funcType([]byte{i32}, nil), // type 0: proc_exit
			funcType(nil, nil),         // type 1: _start
		)),
		section(secImport, vec(importFunc("proc_exit", 0))), // func 0
		section(secFunc, vec(u32(1))),                       // func 1: _start
		section(secExport, vec(export("_start", kindFunc, 1))),
		section(secCode, vec(body(nil,
			i32Const(int32(code)), []byte{opCall, 0}, // call $proc_exit
			[]byte{opUnreachable, end},
		))),
	)
}

// Write returns a WASI command that writes stdout to its standard output and
// stderr to its standard error, then exits with status code.
//
//	(module
//	  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
//	  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
//	  (memory (export "memory") pages)
//	  ;; two iovecs {buf, len}: stdout's at 0, stderr's at 8; nwritten at 16;
//	  ;; the bytes of stdout then of stderr from 32
//	  (data (i32.const 0) "{32, len(stdout)}{32+len(stdout), len(stderr)}")
//	  (data (i32.const 32) "stdout" "stderr")
//	  (func (export "_start")
//	    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
//	    (drop (call $fd_write (i32.const 2) (i32.const 8) (i32.const 1) (i32.const 16)))
//	    (call $proc_exit (i32.const code))
//	    unreachable))
func Write(stdout, stderr string, code uint32) []byte {
	iovecs := le32(32, uint32(len(stdout)), 32+uint32(len(stdout)), uint32(len(stderr)))
	text := stdout + stderr
	pages := (32+uint32(len(text)))/pageSize + 1
	return wasm(
		section(secType, vec(
			funcType([]byte{i32, i32, i32, i32}, []byte{i32}), // type 0: fd_write
			funcType([]byte{i32}, nil),                        // type 1: proc_exit
			funcType(nil, nil),                                // type 2: _start
		)),
		section(secImport, vec(
			importFunc("fd_write", 0),  // func 0
			importFunc("proc_exit", 1), // func 1
		)),
		section(secFunc, vec(u32(2))),          // func 2: _start
		section(secMemory, vec(limits(pages))), // memory 0
		section(secExport, vec(
			export("_start", kindFunc, 2),
			export("memory", kindMemory, 0),
		)),
		section(secCode, vec(body(nil,
			i32Const(1), i32Const(0), i32Const(1), i32Const(16), []byte{opCall, 0, opDrop}, // fd_write(1, 0, 1, 16)
			i32Const(2), i32Const(8), i32Const(1), i32Const(16), []byte{opCall, 0, opDrop}, // fd_write(2, 8, 1, 16)
			i32Const(int32(code)), []byte{opCall, 1}, // proc_exit(code)
			[]byte{opUnreachable, end},
		))),
		section(secData, vec(
			data(0, iovecs),
			data(32, []byte(text)),
		)),
	)
}

// WriteLoop returns a WASI command that writes stdout to its standard
// output, then loops forever as Loop does: a job that says it has started
// and runs until it is killed.
//
//	(module
//	  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
//	  (memory (export "memory") pages)
//	  (data (i32.const 0) "{32, len(stdout)}")   ;; an iovec; nwritten at 16
//	  (data (i32.const 32) "stdout")
//	  (func (export "_start")
//	    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
//	    (loop $spin (br $spin))))
func WriteLoop(stdout string) []byte {
	pages := (32+uint32(len(stdout)))/pageSize + 1
	return wasm(
		section(secType, vec(
			funcType([]byte{i32, i32, i32, i32}, []byte{i32}), // type 0: fd_write
			funcType(nil, nil), // type 1: _start
		)),
		section(secImport, vec(importFunc("fd_write", 0))), // func 0
		section(secFunc, vec(u32(1))),                      // func 1: _start
		section(secMemory, vec(limits(pages))),
		section(secExport, vec(
			export("_start", kindFunc, 1),
			export("memory", kindMemory, 0),
		)),
		section(secCode, vec(body(nil,
			i32Const(1), i32Const(0), i32Const(1), i32Const(16), []byte{opCall, 0, opDrop}, // fd_write(1, 0, 1, 16)
			[]byte{opLoop, blockVoid, opBr, 0, end}, // loop $spin (br $spin)
			[]byte{end},
		))),
		section(secData, vec(
			data(0, le32(32, uint32(len(stdout)))),
			data(32, []byte(stdout)),
		)),
	)
}

// Sleep returns a WASI command that sleeps an hour at a time, forever,
// inside the host: a job that runs until it is killed while the guest is in
// poll_oneoff, as a Go guest's time.Sleep is. With the host's clock (the
// executor's RunSpec.RealTime) it really waits; with wazero's fake clock each
// sleep returns at once and it spins through the host.
//
//	(module
//	  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
//	  (memory (export "memory") 1)
//	  ;; one subscription (48 bytes) at 0: userdata 0, tag 0 (clock), clock
//	  ;; id 1 (monotonic) at 16, timeout 1 h in ns at 24, precision 0 at 32,
//	  ;; flags 0 (relative) at 40; its event is written at 64, nevents at 96
//	  (data (i32.const 0) "subscription")
//	  (func (export "_start")
//	    (loop $sleep
//	      (drop (call $poll_oneoff (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 96)))
//	      (br $sleep))))
func Sleep() []byte {
	sub := make([]byte, 48)
	binary.LittleEndian.PutUint32(sub[16:], 1)               // clock id: monotonic
	binary.LittleEndian.PutUint64(sub[24:], 3600*1000000000) // timeout: 1 h
	return wasm(
		section(secType, vec(
			funcType([]byte{i32, i32, i32, i32}, []byte{i32}), // type 0: poll_oneoff
			funcType(nil, nil), // type 1: _start
		)),
		section(secImport, vec(importFunc("poll_oneoff", 0))), // func 0
		section(secFunc, vec(u32(1))),                         // func 1: _start
		section(secMemory, vec(limits(1))),
		section(secExport, vec(
			export("_start", kindFunc, 1),
			export("memory", kindMemory, 0),
		)),
		section(secCode, vec(body(nil,
			[]byte{opLoop, blockVoid},                                                       // loop $sleep
			i32Const(0), i32Const(64), i32Const(1), i32Const(96), []byte{opCall, 0, opDrop}, // poll_oneoff(0, 64, 1, 96)
			[]byte{opBr, 0}, // br $sleep
			[]byte{end, end},
		))),
		section(secData, vec(data(0, sub))),
	)
}

// Random returns a WASI command that reads n bytes from its random source
// (random_get) and writes them, raw, to its standard output, then exits 0:
// what a job generating a key sees. n is at most 64 KiB - 32.
//
//	(module
//	  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
//	  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
//	  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
//	  (memory (export "memory") 1)
//	  (data (i32.const 0) "{32, n}")   ;; an iovec over the bytes; nwritten at 16
//	  (func (export "_start")
//	    (drop (call $random_get (i32.const 32) (i32.const n)))
//	    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
//	    (call $proc_exit (i32.const 0))
//	    unreachable))
func Random(n uint32) []byte {
	n = min(n, pageSize-32)
	return wasm(
		section(secType, vec(
			funcType([]byte{i32, i32}, []byte{i32}),           // type 0: random_get
			funcType([]byte{i32, i32, i32, i32}, []byte{i32}), // type 1: fd_write
			funcType([]byte{i32}, nil),                        // type 2: proc_exit
			funcType(nil, nil),                                // type 3: _start
		)),
		section(secImport, vec(
			importFunc("random_get", 0), // func 0
			importFunc("fd_write", 1),   // func 1
			importFunc("proc_exit", 2),  // func 2
		)),
		section(secFunc, vec(u32(3))),      // func 3: _start
		section(secMemory, vec(limits(1))), // memory 0
		section(secExport, vec(
			export("_start", kindFunc, 3),
			export("memory", kindMemory, 0),
		)),
		section(secCode, vec(body(nil,
			i32Const(32), i32Const(int32(n)), []byte{opCall, 0, opDrop}, // random_get(32, n)
			i32Const(1), i32Const(0), i32Const(1), i32Const(16), []byte{opCall, 1, opDrop}, // fd_write(1, 0, 1, 16)
			i32Const(0), []byte{opCall, 2}, // proc_exit(0)
			[]byte{opUnreachable, end},
		))),
		section(secData, vec(data(0, le32(32, n)))),
	)
}

// Hog returns a WASI command that grows its memory 1 MiB (16 pages) at a
// time, writing to the last byte of each new mebibyte, until memory.grow
// fails; then, as a Go guest out of memory does, it writes "out of memory"
// to its standard error and exits with status 2. It starts with one page.
//
//	(module
//	  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
//	  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
//	  (memory (export "memory") 1)
//	  (data (i32.const 0) "{32, 14}")              ;; an iovec; nwritten at 16
//	  (data (i32.const 32) "out of memory\n")
//	  (func (export "_start") (local $old i32)
//	    (block $refused
//	      (loop $grow
//	        (br_if $refused (i32.eq (local.tee $old (memory.grow (i32.const 16))) (i32.const -1)))
//	        (i32.store8 (i32.sub (i32.shl (i32.add (local.get $old) (i32.const 16)) (i32.const 16)) (i32.const 1))
//	                    (i32.const 1))
//	        (br $grow)))
//	    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 16)))
//	    (call $proc_exit (i32.const 2))
//	    unreachable))
//
// The address of the last byte wraps to 0xffffffff, the right one, when the
// memory reaches 4 GiB.
func Hog() []byte {
	const msg = "out of memory\n"
	return wasm(
		section(secType, vec(
			funcType([]byte{i32, i32, i32, i32}, []byte{i32}), // type 0: fd_write
			funcType([]byte{i32}, nil),                        // type 1: proc_exit
			funcType(nil, nil),                                // type 2: _start
		)),
		section(secImport, vec(
			importFunc("fd_write", 0),  // func 0
			importFunc("proc_exit", 1), // func 1
		)),
		section(secFunc, vec(u32(2))),      // func 2: _start
		section(secMemory, vec(limits(1))), // memory 0: one page, no maximum
		section(secExport, vec(
			export("_start", kindFunc, 2),
			export("memory", kindMemory, 0),
		)),
		section(secCode, vec(body([]byte{0x01, 0x01, i32}, // one local: $old i32
			[]byte{opBlock, blockVoid},                           // block $refused
			[]byte{opLoop, blockVoid},                            //   loop $grow
			i32Const(16), []byte{opMemoryGrow, 0, opLocalTee, 0}, // memory.grow 16 pages; local.tee $old
			i32Const(-1), []byte{opI32Eq, opBrIf, 1}, // br_if $refused if it returned -1
			[]byte{opLocalGet, 0}, i32Const(16), []byte{opI32Add}, // $old + 16
			i32Const(16), []byte{opI32Shl}, // pages to bytes
			i32Const(1), []byte{opI32Sub}, // the last byte
			i32Const(1), []byte{opI32Store8, 0, 0}, // i32.store8 align=1 offset=0
			[]byte{opBr, 0},                                                                // br $grow
			[]byte{end, end},                                                               // end loop, end block
			i32Const(2), i32Const(0), i32Const(1), i32Const(16), []byte{opCall, 0, opDrop}, // fd_write(2, 0, 1, 16)
			i32Const(2), []byte{opCall, 1}, // proc_exit(2)
			[]byte{opUnreachable, end},
		))),
		section(secData, vec(
			data(0, le32(32, uint32(len(msg)))),
			data(32, []byte(msg)),
		)),
	)
}

// The binary format, as much of it as the modules above use.

const pageSize = 64 << 10

// Section ids.
const (
	secType   = 1
	secImport = 2
	secFunc   = 3
	secMemory = 5
	secExport = 7
	secCode   = 10
	secData   = 11
)

// Value types, export kinds, and the empty block type.
const (
	i32        = 0x7f
	kindFunc   = 0x00
	kindMemory = 0x02
	blockVoid  = 0x40
)

// Opcodes.
const (
	opUnreachable = 0x00
	opBlock       = 0x02
	opLoop        = 0x03
	end           = 0x0b
	opBr          = 0x0c
	opBrIf        = 0x0d
	opCall        = 0x10
	opDrop        = 0x1a
	opLocalGet    = 0x20
	opLocalTee    = 0x22
	opI32Store8   = 0x3a
	opMemoryGrow  = 0x40
	opI32Const    = 0x41
	opI32Eq       = 0x46
	opI32Add      = 0x6a
	opI32Sub      = 0x6b
	opI32Shl      = 0x74
)

// wasm returns a module: the magic number, version 1, then the sections.
func wasm(sections ...[]byte) []byte {
	return bytes.Join(append([][]byte{[]byte("\x00asm\x01\x00\x00\x00")}, sections...), nil)
}

// section returns a section: its id, its size, its contents.
func section(id byte, contents []byte) []byte {
	return append(append([]byte{id}, u32(uint32(len(contents)))...), contents...)
}

// vec returns a vector: its length, then its items.
func vec(items ...[]byte) []byte {
	return bytes.Join(append([][]byte{u32(uint32(len(items)))}, items...), nil)
}

// u32 returns v in unsigned LEB128.
func u32(v uint32) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// i32Const returns the instruction i32.const v: v in signed LEB128.
func i32Const(v int32) []byte {
	b := []byte{opI32Const}
	for {
		c := byte(v & 0x7f)
		v >>= 7 // arithmetic: the sign stays
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// name returns a name: its length in bytes, then its UTF-8 bytes.
func name(s string) []byte { return append(u32(uint32(len(s))), s...) }

// funcType returns a function type of the type section.
func funcType(params, results []byte) []byte {
	return bytes.Join([][]byte{{0x60}, u32(uint32(len(params))), params, u32(uint32(len(results))), results}, nil)
}

// importFunc returns an import of the function wasi_snapshot_preview1.fn of
// type typeIdx.
func importFunc(fn string, typeIdx uint32) []byte {
	return bytes.Join([][]byte{name("wasi_snapshot_preview1"), name(fn), {kindFunc}, u32(typeIdx)}, nil)
}

// export returns an export of the item idx of the given kind.
func export(n string, kind byte, idx uint32) []byte {
	return bytes.Join([][]byte{name(n), {kind}, u32(idx)}, nil)
}

// limits returns a memory type of at least pages pages and no maximum.
func limits(pages uint32) []byte { return append([]byte{0x00}, u32(pages)...) }

// body returns a function body of the code section: its size, its locals
// (a vector of count and type pairs, nil for none) and its instructions.
func body(locals []byte, instrs ...[]byte) []byte {
	if locals == nil {
		locals = []byte{0x00}
	}
	b := bytes.Join(append([][]byte{locals}, instrs...), nil)
	return append(u32(uint32(len(b))), b...)
}

// data returns an active data segment of memory 0 at offset.
func data(offset int32, b []byte) []byte {
	return bytes.Join([][]byte{{0x00}, i32Const(offset), {end}, u32(uint32(len(b))), b}, nil)
}

// le32 returns vs as consecutive little-endian 32-bit words.
func le32(vs ...uint32) []byte {
	b := make([]byte, 0, 4*len(vs))
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}

package images

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
)

// PauseRef names the pod sandbox image k3ha makes itself. Its registry host
// is under .invalid (RFC 2606), which never resolves: if the image were ever
// missing, containerd's pull fails at once instead of fetching some image
// another party published under a real registry name into every pod.
const PauseRef = "k3ha.invalid/pause:1"

// pauseBase is where the program is mapped: the classic non-PIE address,
// aligned for both 4 KiB and 64 KiB pages (arm64 kernels may use either).
const pauseBase = 0x400000

// pauseCode is the machine code of each supported architecture, placed right
// after the headers. Each is an endless loop around a syscall that blocks
// until a signal arrives.
var pauseCode = map[string]struct {
	machine elf.Machine
	align   uint64
	code    []byte
}{
	// loop: mov eax, 34 (pause); syscall; jmp loop
	"amd64": {elf.EM_X86_64, 0x1000, []byte{
		0xb8, 0x22, 0x00, 0x00, 0x00, // mov eax, 34
		0x0f, 0x05, // syscall
		0xeb, 0xf7, // jmp -9 (back to mov)
	}},
	// arm64 has no pause syscall; ppoll(NULL, 0, NULL, NULL) blocks the
	// same way. x0 carries the return value, so every register is set again
	// on each pass.
	"arm64": {elf.EM_AARCH64, 0x10000, le32(
		0xd2800000, // movz x0, #0   fds = NULL
		0xd2800001, // movz x1, #0   nfds = 0
		0xd2800002, // movz x2, #0   timeout = NULL (forever)
		0xd2800003, // movz x3, #0   sigmask = NULL
		0xd2800928, // movz x8, #73  ppoll
		0xd4000001, // svc #0
		0x17fffffa, // b -6 instructions (back to the first movz)
	)},
}

func le32(words ...uint32) []byte {
	b := make([]byte, 0, 4*len(words))
	for _, w := range words {
		b = binary.LittleEndian.AppendUint32(b, w)
	}
	return b
}

// PauseProgram returns the pod sandbox's process: a static ELF executable
// (ELF header, one loadable segment, a few instructions) that sleeps until
// killed. It needs no libc and no file besides itself.
//
// It installs no signal handlers. As PID 1 of the pod's PID namespace the
// kernel therefore drops every signal whose default action would end it,
// except SIGKILL (and SIGSTOP) sent from an ancestor namespace. That is
// enough: containerd's CRI stops a sandbox with SIGKILL
// (internal/cri/server/podsandbox/sandbox_stop.go). Outside a PID namespace
// (the unit test) SIGTERM ends it as usual.
func PauseProgram(arch string) ([]byte, error) {
	p, ok := pauseCode[arch]
	if !ok {
		return nil, fmt.Errorf("pause program: unsupported architecture %q (have amd64, arm64)", arch)
	}
	const ehsize, phsize = 64, 56 // sizes of elf.Header64 and elf.Prog64
	size := uint64(ehsize + phsize + len(p.code))
	hdr := elf.Header64{
		Type:      uint16(elf.ET_EXEC),
		Machine:   uint16(p.machine),
		Version:   uint32(elf.EV_CURRENT),
		Entry:     pauseBase + ehsize + phsize,
		Phoff:     ehsize,
		Ehsize:    ehsize,
		Phentsize: phsize,
		Phnum:     1,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	hdr.Ident[elf.EI_OSABI] = byte(elf.ELFOSABI_NONE)
	// One segment maps the whole file, headers included, read+execute. No
	// PT_GNU_STACK: on 64-bit Linux its absence no longer makes the stack
	// executable, and the program never touches the stack anyway.
	prog := elf.Prog64{
		Type:   uint32(elf.PT_LOAD),
		Flags:  uint32(elf.PF_R | elf.PF_X),
		Off:    0,
		Vaddr:  pauseBase,
		Paddr:  pauseBase,
		Filesz: size,
		Memsz:  size,
		Align:  p.align,
	}
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, hdr); err != nil {
		return nil, fmt.Errorf("pause program: ELF header: %w", err)
	}
	if err := binary.Write(&b, binary.LittleEndian, prog); err != nil {
		return nil, fmt.Errorf("pause program: program header: %w", err)
	}
	b.Write(p.code)
	if uint64(b.Len()) != size {
		return nil, fmt.Errorf("pause program: built %d bytes, expected %d", b.Len(), size)
	}
	return b.Bytes(), nil
}

// PauseImage is the pod sandbox image: the pause program at /pause.
func PauseImage(arch string) (Image, error) {
	prog, err := PauseProgram(arch)
	if err != nil {
		return Image{}, err
	}
	return Image{
		Ref:        PauseRef,
		Arch:       arch,
		Files:      []File{{Path: "/pause", Mode: 0o755, Data: prog}},
		Entrypoint: []string{"/pause"},
	}, nil
}

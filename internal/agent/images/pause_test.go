package images

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestPauseProgramIsMinimalStaticELF(t *testing.T) {
	for arch, machine := range map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64} {
		prog, err := PauseProgram(arch)
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		f, err := elf.NewFile(bytes.NewReader(prog))
		if err != nil {
			t.Fatalf("%s: not an ELF file: %v", arch, err)
		}
		if f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2LSB || f.Type != elf.ET_EXEC || f.Machine != machine {
			t.Errorf("%s: header %+v", arch, f.FileHeader)
		}
		if len(f.Progs) != 1 {
			t.Fatalf("%s: %d program headers, want 1", arch, len(f.Progs))
		}
		p := f.Progs[0]
		if p.Type != elf.PT_LOAD || p.Flags != elf.PF_R|elf.PF_X || p.Off != 0 || p.Filesz != uint64(len(prog)) || p.Memsz != p.Filesz {
			t.Errorf("%s: segment %+v", arch, p.ProgHeader)
		}
		if f.Entry < p.Vaddr+64+56 || f.Entry >= p.Vaddr+p.Filesz {
			t.Errorf("%s: entry %#x outside the code", arch, f.Entry)
		}
		if len(prog) > 160 {
			t.Errorf("%s: %d bytes; it should be tiny", arch, len(prog))
		}
	}
}

func TestPauseProgramUnsupportedArch(t *testing.T) {
	if _, err := PauseProgram("riscv64"); err == nil || !strings.Contains(err.Error(), "riscv64") {
		t.Fatalf("want an error naming riscv64, got %v", err)
	}
	if _, err := PauseImage("s390x"); err == nil {
		t.Fatal("PauseImage accepted s390x")
	}
}

// TestPauseProgramBlocks runs the program of this host's architecture, and
// the other one under qemu-user when it is installed.
func TestPauseProgramBlocks(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			var runner []string
			if arch != runtime.GOARCH {
				q := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[arch]
				path, err := exec.LookPath("qemu-" + q + "-static")
				if err != nil {
					if path, err = exec.LookPath("qemu-" + q); err != nil {
						t.Skipf("not a %s host and no qemu-%s", arch, q)
					}
				}
				runner = []string{path}
			}
			prog, err := PauseProgram(arch)
			if err != nil {
				t.Fatal(err)
			}
			bin := filepath.Join(t.TempDir(), "pause")
			if err := os.WriteFile(bin, prog, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			args := append(runner, bin)
			cmd := exec.Command(args[0], args[1:]...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()

			time.Sleep(200 * time.Millisecond)
			select {
			case err := <-exited:
				t.Fatalf("pause exited: %v; stderr: %s", err, stderr.String())
			default:
			}
			if st := procState(t, cmd.Process.Pid); st != "S" {
				t.Errorf("process state %q, want S (sleeping)", st)
			}

			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
					t.Errorf("want death by SIGKILL, got %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("pause survived SIGKILL")
			}
		})
	}
}

// procState is the state letter in /proc/<pid>/stat, read after the
// command name (which may hold spaces and parentheses).
func procState(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	fields := strings.Fields(s[i+1:])
	if i < 0 || len(fields) == 0 {
		t.Fatalf("cannot parse /proc/%d/stat: %q", pid, s)
	}
	return fields[0]
}

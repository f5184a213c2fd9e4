package gomem

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Start-up runs code a running process never runs again: the init of every
// package in the binary (kubectl's, the kubelet's and containerd's too) and
// each component's one-time set-up. The pages of the binary it touched stay
// mapped and count as the process's resident memory (about 215 MB of a
// server's binary, of which about 80 MB run afterwards). Paging them out
// once start-up is over lets the kernel bring back only what runs again.

// codeRange is one mapping of the binary, [start, end).
type codeRange struct{ start, end uintptr }

// binaryCode picks from /proc/self/maps the read-only and executable
// mappings of the file dev:ino (the binary). Writable mappings hold the
// program's data, which must stay.
func binaryCode(maps []byte, dev string, ino uint64) []codeRange {
	var out []codeRange
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		// address perms offset dev inode path
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[3] != dev || strings.Contains(f[1], "w") {
			continue
		}
		if n, err := strconv.ParseUint(f[4], 10, 64); err != nil || n != ino {
			continue
		}
		start, end, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		s, err1 := strconv.ParseUint(start, 16, 64)
		e, err2 := strconv.ParseUint(end, 16, 64)
		if err1 != nil || err2 != nil || e <= s {
			continue
		}
		out = append(out, codeRange{uintptr(s), uintptr(e)})
	}
	return out
}

// pageOutBinary asks the kernel to page out this process's mappings of its
// own binary (MADV_PAGEOUT: the pages are reclaimed as under memory
// pressure and come back on their next use). It returns the binary's
// resident bytes (RssFile) before and after.
func pageOutBinary() (before, after int64, err error) {
	before, err = rssFile()
	if err != nil {
		return 0, 0, err
	}
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err != nil {
		return before, before, fmt.Errorf("stat /proc/self/exe: %w", err)
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return before, before, err
	}
	dev := fmt.Sprintf("%02x:%02x", unix.Major(st.Dev), unix.Minor(st.Dev))
	for _, r := range binaryCode(maps, dev, st.Ino) {
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, r.start, r.end-r.start, unix.MADV_PAGEOUT); errno != 0 {
			// EINVAL: a kernel before 5.4, which has no MADV_PAGEOUT.
			return before, before, fmt.Errorf("madvise(MADV_PAGEOUT) of the binary's pages: %w", errno)
		}
	}
	after, err = rssFile()
	return before, after, err
}

func rssFile() (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	return kibField(data, "RssFile:")
}

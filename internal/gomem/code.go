package gomem

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Start-up runs code a running process never runs again: the init of every
// package in the binary (kubectl's, the kubelet's and containerd's too) and
// each component's one-time set-up. The pages of the binary it touched stay
// mapped and count as the process's resident memory (about 215 MB of a
// server's binary, of which about 80 MB run afterwards). Paging them out
// once start-up is over lets the kernel bring back only what runs again.

// codeRange is one mapping of the binary, [start, end), of the file from
// offset on.
type codeRange struct {
	start, end uintptr
	offset     int64
}

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
		off, err3 := strconv.ParseInt(f[2], 16, 64)
		if err1 != nil || err2 != nil || err3 != nil || e <= s {
			continue
		}
		out = append(out, codeRange{uintptr(s), uintptr(e), off})
	}
	return out
}

// pagedOut is what pageOutBinary paged out, for WarmBinary.
var pagedOut struct {
	sync.Mutex
	ranges []codeRange
}

// pageOutBinary asks the kernel to page out this process's mappings of its
// own binary (MADV_PAGEOUT: the pages are reclaimed as under memory
// pressure and come back on their next use). It returns the binary's
// resident bytes (RssFile) before and after.
//
// Unmapping alone (MADV_DONTNEED) does not last: the page cache holds the
// binary in large folios, and the next touch of any page maps its whole
// folio again. Paged out, the pages come back in the small pieces the
// faults read.
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
	ranges := binaryCode(maps, dev, st.Ino)
	pagedOut.Lock()
	defer pagedOut.Unlock()
	for _, r := range ranges {
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, r.start, r.end-r.start, unix.MADV_PAGEOUT); errno != 0 {
			// EINVAL: a kernel before 5.4, which has no MADV_PAGEOUT.
			return before, before, fmt.Errorf("madvise(MADV_PAGEOUT) of the binary's pages: %w", errno)
		}
		pagedOut.ranges = append(pagedOut.ranges, r)
	}
	after, err = rssFile()
	return before, after, err
}

// WarmBinary asks the kernel to read the parts of the binary that
// ReleaseStartup paged out back into the page cache, without mapping them
// (the reads go on after this process exits). A start needs all of them
// again: without this, a restart right after a stop (systemctl restart, a
// changed config) reads them from disk, about half a second on this
// machine. Call it when the process stops; a crash skips it, and the next
// start reads them from disk, as after a reboot.
func WarmBinary() {
	pagedOut.Lock()
	ranges := pagedOut.ranges
	pagedOut.Unlock()
	if len(ranges) == 0 {
		return
	}
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		slog.Debug("warm the binary's pages", "err", err)
		return
	}
	defer f.Close()
	for _, r := range ranges {
		if err := unix.Fadvise(int(f.Fd()), r.offset, int64(r.end-r.start), unix.FADV_WILLNEED); err != nil {
			slog.Debug("warm the binary's pages", "err", err)
			return
		}
	}
	slog.Info("binary's paged-out pages read back into the page cache for the next start", "mib", totalMiB(ranges))
}

func totalMiB(ranges []codeRange) int64 {
	var n int64
	for _, r := range ranges {
		n += int64(r.end - r.start)
	}
	return n >> 20
}

func rssFile() (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	return kibField(data, "RssFile:")
}

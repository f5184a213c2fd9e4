//go:build conformance

package conformance

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/k3ha/k3ha/internal/agent/images"
)

// hostPackages are the Debian packages whose programs the test images carry
// (the module proxy serves no C sources): bash, dig for the DNS probes,
// curl and OpenBSD's nc for the HTTP and Service ones, getent for glibc's
// resolver. busybox is built from its release (conformance/busybox.sh).
var hostPackages = map[string]string{"/bin/bash": "bash", "/usr/bin/dig": "bind9-dnsutils",
	"/usr/bin/curl": "curl", "/bin/nc.openbsd": "netcat-openbsd", "/usr/bin/getent": "libc-bin"}

// upstream is where upstream keeps the test images' sources.
func upstream() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "k8s.io/kubernetes").Output()
	if err != nil {
		return "", fmt.Errorf("find k8s.io/kubernetes: %w", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "test", "images"), nil
}

// imageBuilder makes the images the conformance specs run, under the exact
// names `e2e.test --list-images` prints, following each image's Dockerfile
// under test/images.
type imageBuilder struct {
	work    string // built programs, unpacked packages
	confMod string // conformance/ (upstream's test programs)
	mainMod string // the repository root (etcd)
	src     string // k8s.io/kubernetes/test/images
	busybox string // upstream's static busybox, built by make conformance-tools
	arch    string // the host's: the Debian programs are the host's own
}

// build returns every image as its name → docker archive.
func (b *imageBuilder) build() (map[string][]byte, error) {
	for path, pkg := range hostPackages {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("%s is missing: apt-get install %s", path, pkg)
		}
	}
	if _, err := os.Stat(b.busybox); err != nil {
		return nil, fmt.Errorf("%s is missing: run make conformance-tools", b.busybox)
	}
	base, err := b.base()
	if err != nil {
		return nil, err
	}
	bbImage, err := b.busyboxFiles(false)
	if err != nil {
		return nil, err
	}
	agnhost, err := b.agnhost(base)
	if err != nil {
		return nil, err
	}
	var list []images.Image
	add := func(ref string, files []images.File, entry, cmd []string) {
		list = append(list, images.Image{Ref: ref, Arch: b.arch, Files: files, Entrypoint: entry, Cmd: cmd})
	}
	const repo = "registry.k8s.io/e2e-test-images/"
	for _, tag := range []string{"1.37.0-2", "1.36.1-1"} {
		add(repo+"busybox:"+tag, bbImage, nil, []string{"sh"})
	}
	for _, tag := range []string{"2.66.1", "2.55"} {
		add(repo+"agnhost:"+tag, agnhost, []string{"/agnhost"}, []string{"pause"})
	}
	for _, pic := range []string{"kitten", "nautilus"} {
		files, err := b.srcFiles(pic+"/html", map[string]string{pic + ".jpg": "/" + pic + ".jpg", "data.json": "/data.json"})
		if err != nil {
			return nil, err
		}
		add(repo+pic+":1.8", merge(agnhost, files), []string{"/agnhost"}, []string{"test-webserver"})
	}
	list = append(list, images.Image{Ref: repo + "nonroot:1.5", Arch: b.arch, Files: agnhost, Entrypoint: []string{"/agnhost"}, Cmd: []string{"pause"}, User: "1234"})
	for _, prog := range []struct {
		ref, pkg, dest string
		mode           int64
		entry, cmd     []string
	}{
		// The spec checks that no_new_privs stops this setuid program.
		{repo + "nonewprivs:1.4", "k8s.io/kubernetes/test/images/nonewprivs", "/usr/local/bin/nnp", 0o4755, nil, []string{"nnp"}},
		{repo + "regression-issue-74839:1.5", "k8s.io/kubernetes/test/images/regression-issue-74839", "/regression-issue-74839", 0o755, []string{"/regression-issue-74839"}, nil},
		{repo + "sample-apiserver:1.29.2", "k8s.io/sample-apiserver", "/sample-apiserver", 0o755, []string{"/sample-apiserver"}, nil},
	} {
		data, err := b.goProgram(b.confMod, prog.pkg)
		if err != nil {
			return nil, err
		}
		add(prog.ref, merge(base, []images.File{{Path: prog.dest, Mode: prog.mode, Data: data}}), prog.entry, prog.cmd)
	}
	etcd, err := b.goProgram(b.mainMod, "go.etcd.io/etcd/server/v3")
	if err != nil {
		return nil, err
	}
	add("registry.k8s.io/etcd:3.7.0-0", merge(base, []images.File{{Path: "/usr/local/bin/etcd", Mode: 0o755, Data: etcd}}), nil, []string{"/usr/local/bin/etcd"})
	nginx, err := b.nginx(base)
	if err != nil {
		return nil, err
	}
	for _, tag := range []string{"1.28.0-2", "1.27.0-2"} {
		add(repo+"nginx:"+tag, nginx, nil, []string{"nginx", "-g", "daemon off;"})
	}
	add(repo+"glibc-dns-testing:2.1.1", base, nil, []string{"sh"})
	pause, err := images.PauseImage(b.arch)
	if err != nil {
		return nil, err
	}
	pause.Ref = "registry.k8s.io/pause:3.10.2"
	list = append(list, pause)

	out := map[string][]byte{}
	for _, img := range list {
		var buf bytes.Buffer
		if err := images.WriteArchive(&buf, img); err != nil {
			return nil, err
		}
		out[img.Ref] = buf.Bytes()
	}
	return out, nil
}

// busyboxFiles is upstream's static busybox with a link per applet: all in
// /bin as in the busybox image (a spec runs /bin/sysctl), or where Alpine
// puts them (/sbin, /usr/bin). Its ash is /bin/sh: specs compare its error
// messages word for word, and print variables whose names are not shell names.
func (b *imageBuilder) busyboxFiles(alpine bool) ([]images.File, error) {
	bb, err := os.ReadFile(b.busybox)
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(b.busybox, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list-full: %w", err)
	}
	files := []images.File{
		{Path: "/bin/busybox", Mode: 0o755, Data: bb},
		{Path: "/tmp", Dir: true, Mode: 0o1777},
		{Path: "/root", Dir: true, Mode: 0o700},
		{Path: "/etc/passwd", Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n" +
			"user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh\n")},
		{Path: "/etc/group", Data: []byte("root:x:0:root\nnobody:x:65534:\nuser-defined-in-image:x:1000:\n" +
			"group-defined-in-image:x:50000:user-defined-in-image\n")},
		{Path: "/etc/nsswitch.conf", Data: []byte("hosts: files dns\n")},
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "bin/busybox" {
			continue
		}
		if !alpine {
			p = "bin/" + filepath.Base(p)
		}
		rel, err := filepath.Rel(filepath.Dir("/"+p), "/bin/busybox")
		if err != nil {
			return nil, err
		}
		files = append(files, images.File{Path: "/" + p, Link: rel})
	}
	return merge(files), nil
}

// base is what the Alpine-based images have: busybox's applets, and
// from Debian bash, dig, curl, OpenBSD's nc (specs run `nc -v -z`, which
// busybox's lacks) and getent; an os-release naming Alpine.
func (b *imageBuilder) base() ([]images.File, error) {
	files, err := b.busyboxFiles(true)
	if err != nil {
		return nil, err
	}
	var progs []images.File
	for _, p := range []struct{ path, dest string }{{"/bin/bash", "/bin/bash"}, {"/usr/bin/dig", "/usr/bin/dig"},
		{"/usr/bin/curl", "/usr/bin/curl"}, {"/bin/nc.openbsd", "/usr/bin/nc"}, {"/usr/bin/getent", "/usr/bin/getent"}} {
		f, err := dynamicProgram("", p.path, p.dest)
		if err != nil {
			return nil, err
		}
		progs = append(progs, f...)
	}
	// glibc's resolver needs its NSS modules for getent.
	for _, lib := range []string{"/lib/x86_64-linux-gnu/libnss_dns.so.2", "/lib/x86_64-linux-gnu/libnss_files.so.2"} {
		if data, err := os.ReadFile(lib); err == nil {
			progs = append(progs, images.File{Path: lib, Mode: 0o755, Data: data})
		}
	}
	// An image volume spec reads the kitten image's /etc/os-release and
	// expects upstream's base, Alpine, to be named there.
	osRelease := images.File{Path: "/etc/os-release", Mode: 0o644, Data: []byte("NAME=\"Alpine Linux\"\nID=alpine\n" +
		"PRETTY_NAME=\"Alpine Linux layout (k3ha conformance test image)\"\n")}
	return merge(files, progs, []images.File{osRelease}), nil
}

// agnhost follows test/images/agnhost/Dockerfile: the program at /agnhost
// (and /agnhost-2), porter's certificate, /uploads.
func (b *imageBuilder) agnhost(base []images.File) ([]images.File, error) {
	prog, err := b.goProgram(b.confMod, "k8s.io/kubernetes/test/images/agnhost")
	if err != nil {
		return nil, err
	}
	certs, err := b.srcFiles("agnhost/porter", map[string]string{"localhost.crt": "/localhost.crt", "localhost.key": "/localhost.key"})
	if err != nil {
		return nil, err
	}
	return merge(base, certs, []images.File{
		{Path: "/agnhost", Mode: 0o755, Data: prog},
		{Path: "/agnhost-2", Link: "agnhost"},
		{Path: "/uploads", Dir: true},
	}), nil
}

// nginx is Debian's nginx serving /usr/share/nginx/html on port 80, as the
// nginx image does.
func (b *imageBuilder) nginx(base []images.File) ([]images.File, error) {
	root := filepath.Join(b.work, "nginx-root")
	if _, err := os.Stat(filepath.Join(root, "usr/sbin/nginx")); err != nil {
		dl := exec.Command("apt-get", "download", "nginx")
		dl.Dir = b.work
		if out, err := dl.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("apt-get download nginx: %w\n%s", err, out)
		}
		debs, _ := filepath.Glob(filepath.Join(b.work, "nginx_*.deb"))
		if len(debs) == 0 {
			return nil, fmt.Errorf("apt-get download nginx left no package in %s", b.work)
		}
		if out, err := exec.Command("dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("unpack %s: %w\n%s", debs[0], err, out)
		}
	}
	prog, err := dynamicProgram(root, "usr/sbin/nginx", "/usr/sbin/nginx")
	if err != nil {
		return nil, err
	}
	conf := `user nginx;
worker_processes 1;
error_log /dev/stderr notice;
pid /run/nginx.pid;
events { worker_connections 1024; }
http {
    types { text/html html; application/json json; image/jpeg jpg; }
    default_type application/octet-stream;
    access_log /dev/stdout;
    server {
        listen 80;
        location / { root /usr/share/nginx/html; index index.html; }
    }
}
`
	return merge(base, prog, []images.File{
		{Path: "/etc/nginx/nginx.conf", Data: []byte(conf)},
		{Path: "/usr/share/nginx/html/index.html", Data: []byte("<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head><body><h1>Welcome to nginx!</h1></body></html>\n")},
		{Path: "/var/lib/nginx", Dir: true},
		{Path: "/var/log/nginx", Dir: true},
		{Path: "/run", Dir: true},
		{Path: "/etc/passwd", Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/sbin/nologin\nnginx:x:101:101:nginx:/var/cache/nginx:/sbin/nologin\n")},
		{Path: "/etc/group", Data: []byte("root:x:0:root\nnobody:x:65534:\nnginx:x:101:\n")},
	}), nil
}

// goProgram builds pkg of the module in dir as a static program.
func (b *imageBuilder) goProgram(dir, pkg string) ([]byte, error) {
	out := filepath.Join(b.work, "programs", filepath.Base(pkg))
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOARCH="+b.arch)
	if log, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build %s: %w\n%s", pkg, err, log)
	}
	return os.ReadFile(out)
}

// srcFiles copies files of test/images/<dir> (name → path in the image).
func (b *imageBuilder) srcFiles(dir string, names map[string]string) ([]images.File, error) {
	var files []images.File
	for name, dest := range names {
		data, err := os.ReadFile(filepath.Join(b.src, dir, name))
		if err != nil {
			return nil, err
		}
		files = append(files, images.File{Path: dest, Data: data})
	}
	return files, nil
}

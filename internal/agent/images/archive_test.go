package images

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func testImage() Image {
	return Image{
		Ref:  "docker.io/k3ha/test:1",
		Arch: "amd64",
		Files: []File{
			{Path: "/etc/app/conf.txt", Data: []byte("x=1\n")},
			{Path: "app", Mode: 0o755, Data: []byte("\x7fELF not really")},
			{Path: "/etc/hostname", Mode: 0o600, Data: []byte("h\n")},
		},
		Entrypoint: []string{"/app"},
		Cmd:        []string{"--port", "8080"},
		Env:        []string{"A=b"},
		WorkingDir: "/etc",
	}
}

type tarEntry struct {
	hdr  *tar.Header
	data []byte
}

func readTar(t *testing.T, data []byte) ([]string, map[string]tarEntry) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var order []string
	entries := map[string]tarEntry{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("bad tar: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, hdr.Name)
		entries[hdr.Name] = tarEntry{hdr, b}
	}
	return order, entries
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// writeAndRead writes img as an archive and returns its one manifest entry
// and its files.
func writeAndRead(t *testing.T, img Image) (manifestEntry, map[string]tarEntry) {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteArchive(&buf, img); err != nil {
		t.Fatal(err)
	}
	_, files := readTar(t, buf.Bytes())
	var manifest []manifestEntry
	if err := json.Unmarshal(files["manifest.json"].data, &manifest); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(manifest) != 1 || len(manifest[0].Layers) != 1 {
		t.Fatalf("manifest %+v", manifest)
	}
	return manifest[0], files
}

func TestWriteArchiveStructure(t *testing.T) {
	img := testImage()
	m, files := writeAndRead(t, img)
	if len(m.RepoTags) != 1 || m.RepoTags[0] != "k3ha/test:1" {
		t.Errorf("RepoTags %v, want [k3ha/test:1]", m.RepoTags)
	}

	config, ok := files[m.Config]
	if !ok {
		t.Fatalf("no config %s in archive", m.Config)
	}
	if want := sha(config.data) + ".json"; m.Config != want {
		t.Errorf("config at %s, its digest says %s", m.Config, want)
	}
	layer, ok := files[m.Layers[0]]
	if !ok {
		t.Fatalf("no layer %s in archive", m.Layers[0])
	}
	layerDigest := sha(layer.data)
	if m.Layers[0] != layerDigest+"/layer.tar" {
		t.Errorf("layer at %s, its digest is %s", m.Layers[0], layerDigest)
	}

	var cfg struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
		Config       struct {
			Env, Entrypoint, Cmd []string
			WorkingDir           string
		} `json:"config"`
		RootFS struct {
			Type    string   `json:"type"`
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
		History []json.RawMessage `json:"history"`
	}
	if err := json.Unmarshal(config.data, &cfg); err != nil {
		t.Fatalf("config: %v", err)
	}
	if cfg.Architecture != "amd64" || cfg.OS != "linux" {
		t.Errorf("platform %s/%s", cfg.OS, cfg.Architecture)
	}
	if strings.Join(cfg.Config.Entrypoint, " ") != "/app" || strings.Join(cfg.Config.Cmd, " ") != "--port 8080" ||
		strings.Join(cfg.Config.Env, " ") != "A=b" || cfg.Config.WorkingDir != "/etc" {
		t.Errorf("run config %+v", cfg.Config)
	}
	if cfg.RootFS.Type != "layers" || len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != "sha256:"+layerDigest {
		t.Errorf("rootfs %+v, layer digest %s", cfg.RootFS, layerDigest)
	}
	if len(cfg.History) != 1 {
		t.Errorf("history %d entries, want one per layer", len(cfg.History))
	}
	if id, err := img.ID(); err != nil || id != "sha256:"+sha(config.data) {
		t.Errorf("ID() = %s, %v; config digest %s", id, err, sha(config.data))
	}

	// The layer: directories before their contents, modes as given (0644
	// by default), every time fixed.
	order, entries := readTar(t, layer.data)
	want := []string{"app", "etc/", "etc/app/", "etc/app/conf.txt", "etc/hostname"}
	if strings.Join(order, " ") != strings.Join(want, " ") {
		t.Errorf("layer entries %v, want %v", order, want)
	}
	for name, mode := range map[string]int64{"app": 0o755, "etc/": 0o755, "etc/app/conf.txt": 0o644, "etc/hostname": 0o600} {
		if e := entries[name]; e.hdr.Mode != mode {
			t.Errorf("%s mode %o, want %o", name, e.hdr.Mode, mode)
		}
	}
	if string(entries["etc/app/conf.txt"].data) != "x=1\n" || entries["etc/"].hdr.Typeflag != tar.TypeDir {
		t.Error("layer contents wrong")
	}
	for name, e := range entries {
		if e.hdr.ModTime.Unix() != 0 || e.hdr.Uid != 0 || e.hdr.Gid != 0 {
			t.Errorf("%s: mtime %v uid %d gid %d", name, e.hdr.ModTime, e.hdr.Uid, e.hdr.Gid)
		}
	}
}

// Links, directories with their own mode and owner, setuid programs and
// the user to run as: what a test image built from a distribution's files
// needs.
func TestWriteArchiveLinksDirsOwners(t *testing.T) {
	img := Image{Ref: "docker.io/k3ha/test:2", Arch: "amd64", User: "1234",
		Files: []File{
			{Path: "/bin/busybox", Mode: 0o755, Data: []byte("bb")},
			{Path: "/bin/sh", Link: "busybox"},
			{Path: "/tmp", Dir: true, Mode: 0o1777},
			{Path: "/tmp/keep", Data: []byte("k")},
			{Path: "/home/user", Dir: true, UID: 1000, GID: 50000},
			{Path: "/usr/local/bin/nnp", Mode: 0o4755, Data: []byte("nnp")},
		}}
	m, files := writeAndRead(t, img)
	var cfg imageConfig
	if err := json.Unmarshal(files[m.Config].data, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "1234" {
		t.Errorf("config user %q, want 1234", cfg.Config.User)
	}
	order, entries := readTar(t, files[m.Layers[0]].data)
	want := []string{"bin/", "bin/busybox", "bin/sh", "home/", "home/user/", "tmp/", "tmp/keep", "usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/nnp"}
	if strings.Join(order, " ") != strings.Join(want, " ") {
		t.Errorf("layer entries %v, want %v", order, want)
	}
	if h := entries["bin/sh"].hdr; h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" || h.Size != 0 {
		t.Errorf("bin/sh: type %c link %q size %d", h.Typeflag, h.Linkname, h.Size)
	}
	if h := entries["tmp/"].hdr; h.Typeflag != tar.TypeDir || h.Mode != 0o1777 {
		t.Errorf("tmp/: type %c mode %o", h.Typeflag, h.Mode)
	}
	if h := entries["home/user/"].hdr; h.Uid != 1000 || h.Gid != 50000 || h.Mode != 0o755 {
		t.Errorf("home/user/: uid %d gid %d mode %o", h.Uid, h.Gid, h.Mode)
	}
	if h := entries["usr/local/bin/nnp"].hdr; h.Mode != 0o4755 || h.Uid != 0 {
		t.Errorf("nnp: mode %o uid %d", h.Mode, h.Uid)
	}
}

func TestWriteArchiveDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	img := testImage()
	if err := WriteArchive(&a, img); err != nil {
		t.Fatal(err)
	}
	// Same files in another order: same bytes.
	img.Files = []File{img.Files[2], img.Files[0], img.Files[1]}
	if err := WriteArchive(&b, img); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two archives of one image differ")
	}
	p1, _ := PauseImage("amd64")
	p2, _ := PauseImage("amd64")
	id1, _ := p1.ID()
	id2, _ := p2.ID()
	if id1 != id2 || !strings.HasPrefix(id1, "sha256:") {
		t.Fatalf("pause image IDs %s, %s", id1, id2)
	}
}

func TestWriteArchiveRejects(t *testing.T) {
	for name, img := range map[string]Image{
		"short name":   {Ref: "k3ha/test:1", Arch: "amd64"},
		"no tag":       {Ref: "docker.io/k3ha/test", Arch: "amd64"},
		"digest":       {Ref: "docker.io/k3ha/test@sha256:" + strings.Repeat("a", 64), Arch: "amd64"},
		"no arch":      {Ref: "docker.io/k3ha/test:1"},
		"dotdot":       {Ref: "docker.io/k3ha/test:1", Arch: "amd64", Files: []File{{Path: "../x"}}},
		"root":         {Ref: "docker.io/k3ha/test:1", Arch: "amd64", Files: []File{{Path: "/"}}},
		"twice":        {Ref: "docker.io/k3ha/test:1", Arch: "amd64", Files: []File{{Path: "/a"}, {Path: "a"}}},
		"file and dir": {Ref: "docker.io/k3ha/test:1", Arch: "amd64", Files: []File{{Path: "/a"}, {Path: "a/b"}}},
	} {
		if err := WriteArchive(io.Discard, img); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRepoTag(t *testing.T) {
	for ref, want := range map[string]string{
		"docker.io/k3ha/test:1":          "k3ha/test:1",
		"docker.io/library/busybox:1.36": "busybox:1.36",
		"registry.example:5000/a/b:c":    "registry.example:5000/a/b:c",
		PauseRef:                         PauseRef,
	} {
		if got, err := RepoTag(ref); err != nil || got != want {
			t.Errorf("RepoTag(%s) = %q, %v; want %q", ref, got, err, want)
		}
	}
}

// TestArchiveImportsAsRef runs containerd's own importer (the code behind
// client.Import) over the archive, with containerd's on-disk content store:
// the image must come out named exactly Ref, for the right platform, with
// the config and layer WriteArchive wrote.
func TestArchiveImportsAsRef(t *testing.T) {
	ctx := context.Background()
	store, err := local.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range []Image{
		testImage(),
		{Ref: "docker.io/library/web:2", Arch: "arm64", Files: []File{{Path: "/app", Data: []byte("x")}}},
		ImageFromBinary("registry.example:5000/e2e/http:v1", "amd64", []byte("bin"), "-listen", ":80"),
		mustPause(t),
	} {
		var buf bytes.Buffer
		if err := WriteArchive(&buf, img); err != nil {
			t.Fatal(err)
		}
		indexDesc, err := archive.ImportIndex(ctx, store, &buf)
		if err != nil {
			t.Fatalf("%s: import: %v", img.Ref, err)
		}
		var index ocispec.Index
		raw, err := content.ReadBlob(ctx, store, indexDesc)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &index); err != nil {
			t.Fatal(err)
		}
		if len(index.Manifests) != 1 {
			t.Fatalf("%s: %d manifests", img.Ref, len(index.Manifests))
		}
		m := index.Manifests[0]
		// client.Import names images by this annotation (imageName in
		// client/import.go).
		if name := m.Annotations[images.AnnotationImageName]; name != img.Ref {
			t.Errorf("imports as %q, want %q", name, img.Ref)
		}
		if m.Platform == nil || m.Platform.OS != "linux" || m.Platform.Architecture != img.Arch {
			t.Errorf("%s: platform %+v", img.Ref, m.Platform)
		}
		want := platforms.Only(ocispec.Platform{OS: "linux", Architecture: img.Arch})
		ci := images.Image{Name: img.Ref, Target: m}
		cfg, err := ci.Config(ctx, store, want)
		if err != nil {
			t.Fatalf("%s: config: %v", img.Ref, err)
		}
		if id, _ := img.ID(); cfg.Digest.String() != id {
			t.Errorf("%s: config %s, ID() %s", img.Ref, cfg.Digest, id)
		}
		diffIDs, err := ci.RootFS(ctx, store, want)
		if err != nil || len(diffIDs) != 1 {
			t.Fatalf("%s: rootfs %v, %v", img.Ref, diffIDs, err)
		}
		mf, err := images.Manifest(ctx, store, m, want)
		if err != nil {
			t.Fatal(err)
		}
		if len(mf.Layers) != 1 || mf.Layers[0].Digest != diffIDs[0] || mf.Layers[0].MediaType != images.MediaTypeDockerSchema2Layer {
			t.Errorf("%s: layers %+v, diff IDs %v", img.Ref, mf.Layers, diffIDs)
		}
	}
}

func mustPause(t *testing.T) Image {
	img, err := PauseImage("amd64")
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestFullRefOnly(t *testing.T) {
	for ref, want := range map[string]string{
		"latest":                       "",
		"1.0":                          "",
		"nginx:1.25":                   "docker.io/library/nginx:1.25",
		"docker.io/library/nginx:1.25": "docker.io/library/nginx:1.25",
		"quay.io/a/b:c":                "quay.io/a/b:c",
		"Bad:Name:x":                   "",
	} {
		if got := fullRefOnly(ref); got != want {
			t.Errorf("fullRefOnly(%q) = %q, want %q", ref, got, want)
		}
	}
}

func TestIsArchive(t *testing.T) {
	for name, want := range map[string]bool{
		"a.tar": true, "a.tar.gz": true, "a.tgz": true, "a.tar.zst": true,
		"README": false, "a.tar.partial": false, "a.zip": false,
	} {
		if isArchive(name) != want {
			t.Errorf("isArchive(%s) != %v", name, want)
		}
	}
}

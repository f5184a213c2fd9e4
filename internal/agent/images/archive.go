// Package images gives a k3ha node its container images without a
// registry: it writes docker-archive tarballs (the format `docker save`
// writes), builds the pod sandbox ("pause") image itself, and imports
// archives into containerd's CRI namespace at agent start.
package images

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	distref "github.com/distribution/reference"
)

// Image is a single-layer linux image.
type Image struct {
	// Ref is the fully qualified name the image is imported as, e.g.
	// "docker.io/library/app:1" (not "app:1").
	Ref        string
	Arch       string // GOARCH style: "amd64", "arm64"
	Files      []File // the layer's contents
	Entrypoint []string
	Cmd        []string
	Env        []string // "KEY=value"
	WorkingDir string
	User       string // "uid[:gid]" the container runs as; "" is root
}

// File is an entry of the layer: a regular file, a symbolic link (Link) or
// a directory (Dir). Parent directories not listed are implied (mode 0755,
// root's).
type File struct {
	Path     string // absolute or relative to the root: "/app" and "app" are the same
	Mode     int64  // permission bits with setuid, setgid and sticky; 0 means 0644 (0755 for a Dir)
	Data     []byte
	Link     string // a symbolic link to Link instead of a regular file
	Dir      bool   // a directory that needs its own mode or owner (e.g. /tmp, 01777)
	UID, GID int
}

// ImageFromBinary is an image of one static executable at /app, started
// with args.
func ImageFromBinary(ref, arch string, binary []byte, args ...string) Image {
	return Image{
		Ref:        ref,
		Arch:       arch,
		Files:      []File{{Path: "/app", Mode: 0o755, Data: binary}},
		Entrypoint: []string{"/app"},
		Cmd:        args,
	}
}

// epoch is every timestamp in an archive, so that one image always gives
// the same bytes and digests.
var epoch = time.Unix(0, 0).UTC()

// built is an image turned into its blobs.
type built struct {
	repoTag      string
	layer        []byte
	layerDigest  string // hex sha256 of the uncompressed layer: its diff ID
	config       []byte
	configDigest string // hex sha256 of the config: the image ID
}

// Config JSON as containerd and Docker read it (the fields of the OCI image
// config that matter here).
type imageConfig struct {
	Architecture string        `json:"architecture"`
	OS           string        `json:"os"`
	Created      time.Time     `json:"created"`
	Config       runConfig     `json:"config"`
	RootFS       rootFS        `json:"rootfs"`
	History      []historyItem `json:"history"`
}

type runConfig struct {
	Env        []string `json:"Env,omitempty"`
	Entrypoint []string `json:"Entrypoint,omitempty"`
	Cmd        []string `json:"Cmd,omitempty"`
	WorkingDir string   `json:"WorkingDir,omitempty"`
	User       string   `json:"User,omitempty"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

type historyItem struct {
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by"`
}

// manifestEntry is one image in a docker-archive's manifest.json.
type manifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// ID is the image's ID as the CRI reports it: the digest of its config,
// "sha256:<hex>".
func (img Image) ID() (string, error) {
	b, err := build(img)
	if err != nil {
		return "", err
	}
	return "sha256:" + b.configDigest, nil
}

// RepoTag is the name written into the archive's RepoTags for ref: the
// familiar short form `docker save` writes ("k3ha/pause:1" for
// "docker.io/k3ha/pause:1", "app:1" for "docker.io/library/app:1").
// containerd's importer expands it back to the full name.
func RepoTag(ref string) (string, error) {
	named, err := distref.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("image name %q: %w", ref, err)
	}
	if _, ok := named.(distref.Tagged); !ok {
		return "", fmt.Errorf("image name %q: needs a tag, not a digest", ref)
	}
	// Anything but the full form would import under another name than
	// Ref, and lookups by Ref (EnsurePause, the kubelet) would miss it.
	if named.String() != ref {
		return "", fmt.Errorf("image name %q is not fully qualified: use %q", ref, named.String())
	}
	return distref.FamiliarString(named), nil
}

func build(img Image) (built, error) {
	if img.Arch == "" {
		return built{}, fmt.Errorf("image %s: no architecture", img.Ref)
	}
	tag, err := RepoTag(img.Ref)
	if err != nil {
		return built{}, err
	}
	layer, err := layerTar(img.Files)
	if err != nil {
		return built{}, fmt.Errorf("image %s: %w", img.Ref, err)
	}
	layerSum := sha256.Sum256(layer)
	layerDigest := hex.EncodeToString(layerSum[:])
	cfg := imageConfig{
		Architecture: img.Arch,
		OS:           "linux",
		Created:      epoch,
		Config: runConfig{
			Env:        img.Env,
			Entrypoint: img.Entrypoint,
			Cmd:        img.Cmd,
			WorkingDir: img.WorkingDir,
			User:       img.User,
		},
		RootFS:  rootFS{Type: "layers", DiffIDs: []string{"sha256:" + layerDigest}},
		History: []historyItem{{Created: epoch, CreatedBy: "k3ha"}},
	}
	config, err := json.Marshal(cfg)
	if err != nil {
		return built{}, fmt.Errorf("image %s: config: %w", img.Ref, err)
	}
	configSum := sha256.Sum256(config)
	return built{
		repoTag:      tag,
		layer:        layer,
		layerDigest:  layerDigest,
		config:       config,
		configDigest: hex.EncodeToString(configSum[:]),
	}, nil
}

// cleanPath turns a file's path into a tar entry name relative to the root.
func cleanPath(p string) (string, error) {
	c := path.Clean("/" + p)
	if c == "/" || p == "" {
		return "", fmt.Errorf("file path %q: names no file", p)
	}
	if strings.Contains("/"+p+"/", "/../") {
		// Clean would silently map "../x" to "/x"; refuse instead.
		return "", fmt.Errorf("file path %q: must not contain ..", p)
	}
	return c[1:], nil
}

// layerTar writes files as an uncompressed layer tar, each directory entry
// before what is in it, sorted so the bytes do not depend on the order of
// files.
func layerTar(files []File) ([]byte, error) {
	byName := make(map[string]File, len(files))
	names := make([]string, 0, len(files))
	for _, f := range files {
		name, err := cleanPath(f.Path)
		if err != nil {
			return nil, err
		}
		if _, dup := byName[name]; dup {
			return nil, fmt.Errorf("file %q given twice", name)
		}
		byName[name] = f
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if f, clash := byName[dir]; clash && !f.Dir {
				return nil, fmt.Errorf("file %q is also the directory of %q", dir, name)
			}
		}
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	l := layerWriter{tw: tw, files: byName, done: map[string]bool{}}
	for _, name := range names {
		f := byName[name]
		if f.Dir {
			if err := l.dirs(name); err != nil {
				return nil, err
			}
			continue
		}
		if err := l.dirs(path.Dir(name)); err != nil {
			return nil, err
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: modeOr(f.Mode, 0o644), Size: int64(len(f.Data)),
			Uid: f.UID, Gid: f.GID, ModTime: epoch}
		if f.Link != "" {
			hdr.Typeflag, hdr.Linkname, hdr.Mode, hdr.Size = tar.TypeSymlink, f.Link, 0o777, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", name, err)
		}
		if f.Link == "" {
			if _, err := tw.Write(f.Data); err != nil {
				return nil, fmt.Errorf("layer entry %s: %w", name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return buf.Bytes(), nil
}

func modeOr(mode, fallback int64) int64 {
	if mode &= 0o7777; mode == 0 {
		return fallback
	}
	return mode
}

// layerWriter writes directory entries once each, listed ones with their
// own mode and owner.
type layerWriter struct {
	tw    *tar.Writer
	files map[string]File
	done  map[string]bool
}

// dirs writes the entries of dir and its parents not written yet,
// outermost first.
func (l layerWriter) dirs(dir string) error {
	if dir == "." || l.done[dir] {
		return nil
	}
	if err := l.dirs(path.Dir(dir)); err != nil {
		return err
	}
	l.done[dir] = true
	f := l.files[dir]
	hdr := &tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: modeOr(f.Mode, 0o755), Uid: f.UID, Gid: f.GID, ModTime: epoch}
	if err := l.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("layer entry %s: %w", dir, err)
	}
	return nil
}

// WriteArchive writes img as a docker-archive: the layer tar at
// <layer digest>/layer.tar, the config at <config digest>.json and
// manifest.json naming both, with RepoTag(img.Ref) as its tag. The same
// image always gives the same bytes. The layer is built in memory, so this
// is meant for small images.
func WriteArchive(w io.Writer, img Image) error {
	b, err := build(img)
	if err != nil {
		return err
	}
	layerPath := b.layerDigest + "/layer.tar"
	configPath := b.configDigest + ".json"
	manifest, err := json.Marshal([]manifestEntry{{Config: configPath, RepoTags: []string{b.repoTag}, Layers: []string{layerPath}}})
	if err != nil {
		return fmt.Errorf("image %s: manifest: %w", img.Ref, err)
	}
	tw := tar.NewWriter(w)
	entries := []struct {
		name string
		data []byte
	}{
		{b.layerDigest + "/", nil},
		{layerPath, b.layer},
		{configPath, b.config},
		{"manifest.json", manifest},
	}
	for _, e := range entries {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: e.name, Mode: 0o644, Size: int64(len(e.data)), ModTime: epoch}
		if strings.HasSuffix(e.name, "/") {
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("image %s: archive entry %s: %w", img.Ref, e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return fmt.Errorf("image %s: archive entry %s: %w", img.Ref, e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("image %s: archive: %w", img.Ref, err)
	}
	return nil
}

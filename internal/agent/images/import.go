package images

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/archive/compression"
	"github.com/containerd/containerd/v2/pkg/labels"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	distref "github.com/distribution/reference"
)

const (
	// Namespace is where containerd's CRI plugin keeps the kubelet's images
	// (K8sContainerdNamespace in containerd's internal/cri/constants).
	Namespace = "k8s.io"
	// Snapshotter is the one the CRI plugin is configured with (see
	// internal/agent/containerd), so imported images are unpacked for it.
	Snapshotter = "overlayfs"
)

// Labels the CRI plugin puts on the images it pulls (internal/cri/labels in
// containerd). "managed" makes an imported image look like a pulled one.
// "pinned" is reported to the kubelet, whose image garbage collector then
// never removes the image: a node without a registry could not get it back.
const (
	criImageLabel  = labels.CRIContainerdPrefix + ".image"
	criManaged     = "managed"
	criPinnedLabel = labels.CRIContainerdPrefix + ".pinned"
	criPinned      = "pinned"
)

// platform picks what to import and unpack: this host's platform, matched
// the way the CRI plugin's image store matches it (platforms.Default() in
// internal/cri/server/images/service.go), so the CRI sees every image this
// imports.
var platform = platforms.Default

// Import loads one image archive (docker-archive or OCI layout, plain,
// gzip or zstd) into the CRI's namespace, unpacks it for the CRI's
// snapshotter, and returns the names it now has. An archive without any
// image name is an error: the kubelet could not refer to it.
func Import(ctx context.Context, c *client.Client, r io.Reader) ([]string, error) {
	ctx = namespaces.WithNamespace(ctx, Namespace)
	// One lease over import and unpack, so garbage collection cannot take
	// content or snapshots that no image refers to yet.
	ctx, done, err := c.WithLease(ctx)
	if err != nil {
		return nil, fmt.Errorf("containerd lease: %w", err)
	}
	defer func() {
		if err := done(context.WithoutCancel(ctx)); err != nil {
			slog.Warn("could not release containerd lease; it expires by itself", "err", err)
		}
	}()

	plain, err := compression.DecompressStream(r)
	if err != nil {
		return nil, fmt.Errorf("read archive: %w", err)
	}
	defer plain.Close()

	imgs, err := c.Import(ctx, plain,
		// Only this host's platform: its blobs are walked and kept, any
		// others are left out. Importing all platforms would fail on
		// multi-platform archives that carry only some platforms' blobs
		// (as `ctr export` writes them by default).
		client.WithImportPlatform(platform()),
		// OCI layouts may name images by tag alone; those get no name.
		client.WithImageRefTranslator(fullRefOnly),
		client.WithImageLabels(map[string]string{criImageLabel: criManaged, criPinnedLabel: criPinned}),
	)
	if errors.Is(err, images.ErrEmptyWalk) {
		// Nothing for this host: the platform filter left no manifest.
		return nil, fmt.Errorf("import archive: no image for this host's platform %s: %w", platforms.DefaultString(), err)
	}
	if err != nil {
		return nil, fmt.Errorf("import archive: %w", err)
	}

	var names []string
	unpacked := map[string]bool{}
	for _, img := range imgs {
		names = append(names, img.Name)
		// Several names often share one manifest: unpack it once.
		if unpacked[img.Target.Digest.String()] {
			continue
		}
		if err := client.NewImageWithPlatform(c, img, platform()).Unpack(ctx, Snapshotter); err != nil {
			return nil, fmt.Errorf("unpack %s: %w", img.Name, err)
		}
		unpacked[img.Target.Digest.String()] = true
	}
	if len(names) == 0 {
		return nil, errors.New("archive names no image (no RepoTags in manifest.json, no image name annotation in index.json)")
	}
	sort.Strings(names)
	return names, nil
}

// fullRefOnly keeps an OCI layout's org.opencontainers.image.ref.name only
// if it names a repository, not just a tag ("latest" alone would become an
// image called "latest"), and normalizes it as the CRI does.
func fullRefOnly(ref string) string {
	if !strings.ContainsAny(ref, "/:@") {
		return ""
	}
	named, err := distref.ParseDockerRef(ref)
	if err != nil {
		return ""
	}
	return named.String()
}

// archiveSuffixes are the files ImportDir loads; the compression is found
// from the content, not the name.
var archiveSuffixes = []string{".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.zstd"}

// ImportDir imports every image archive in dir (see archiveSuffixes), in
// name order, and returns how many files it imported. A file that fails
// does not stop the others; the error names every file that failed. A
// missing dir holds no images.
func ImportDir(ctx context.Context, c *client.Client, dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("image dir: %w", err)
	}
	var (
		n    int
		errs []error
	)
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if e.IsDir() || !isArchive(e.Name()) {
			slog.Debug("not an image archive, skipped", "file", path)
			continue
		}
		begin := time.Now()
		names, err := importFile(ctx, c, path)
		if err != nil {
			errs = append(errs, fmt.Errorf("image archive %s: %w", path, err))
			continue
		}
		n++
		slog.Info("images imported", "file", path, "images", names, "took", time.Since(begin).Round(time.Millisecond))
	}
	return n, errors.Join(errs...)
}

func isArchive(name string) bool {
	for _, s := range archiveSuffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

func importFile(ctx context.Context, c *client.Client, path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Import(ctx, c, f)
}

// EnsurePause makes sure containerd has the pause image of this k3ha for
// arch (the host's).
func EnsurePause(ctx context.Context, c *client.Client, arch string) error {
	img, err := PauseImage(arch)
	if err != nil {
		return err
	}
	id, err := img.ID()
	if err != nil {
		return err
	}
	return Ensure(ctx, c, Packed{Ref: PauseRef, ID: id}, func() (io.ReadCloser, error) {
		var buf bytes.Buffer
		if err := WriteArchive(&buf, img); err != nil {
			return nil, err
		}
		return io.NopCloser(&buf), nil
	})
}

// Packed names an image archive k3ha made: the reference it imports as and
// its ID (the config digest).
type Packed struct {
	Ref string `json:"ref"`
	ID  string `json:"id"`
}

// PackedMetaPath is where the Packed of an archive is kept, beside it.
func PackedMetaPath(archive string) string { return strings.TrimSuffix(archive, ".tar") + ".json" }

// EnsurePacked makes sure containerd has the image of a packed archive,
// reading the archive only when it does not.
func EnsurePacked(ctx context.Context, c *client.Client, archive string) error {
	data, err := os.ReadFile(PackedMetaPath(archive))
	if err != nil {
		return fmt.Errorf("packed image: %w", err)
	}
	var p Packed
	if err := json.Unmarshal(data, &p); err != nil {
		return fmt.Errorf("packed image %s: %w", PackedMetaPath(archive), err)
	}
	return Ensure(ctx, c, p, func() (io.ReadCloser, error) { return os.Open(archive) })
}

// Ensure imports an image unless containerd has the same one (same config
// digest) already, unpacked and labelled as Import labels it.
func Ensure(ctx context.Context, c *client.Client, p Packed, open func() (io.ReadCloser, error)) error {
	ctx = namespaces.WithNamespace(ctx, Namespace)
	ok, err := present(ctx, c, p.Ref, p.ID)
	if err != nil {
		return err
	}
	if ok {
		slog.Debug("image present", "image", p.Ref, "id", p.ID)
		return nil
	}
	r, err := open()
	if err != nil {
		return fmt.Errorf("image %s: %w", p.Ref, err)
	}
	defer r.Close()
	begin := time.Now()
	names, err := Import(ctx, c, r)
	if err != nil {
		return fmt.Errorf("import %s: %w", p.Ref, err)
	}
	if len(names) != 1 || names[0] != p.Ref {
		// WriteArchive's RepoTags must import as exactly Ref.
		return fmt.Errorf("image imported as %v, not %s", names, p.Ref)
	}
	slog.Info("image imported", "image", p.Ref, "id", p.ID, "took", time.Since(begin).Round(time.Millisecond))
	return nil
}

// present tells whether containerd has ref with config digest id, unpacked
// for the CRI's snapshotter and labelled as Import labels it.
func present(ctx context.Context, c *client.Client, ref, id string) (bool, error) {
	meta, err := c.ImageService().Get(ctx, ref)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up %s: %w", ref, err)
	}
	if meta.Labels[criImageLabel] != criManaged || meta.Labels[criPinnedLabel] != criPinned {
		return false, nil
	}
	img := client.NewImageWithPlatform(c, meta, platform())
	cfg, err := img.Config(ctx)
	if err != nil {
		// Content missing or for another platform: import again.
		slog.Debug("image config unreadable; importing again", "image", ref, "err", err)
		return false, nil
	}
	if cfg.Digest.String() != id {
		return false, nil
	}
	unpacked, err := img.IsUnpacked(ctx, Snapshotter)
	if err != nil {
		return false, fmt.Errorf("check %s unpacked: %w", ref, err)
	}
	return unpacked, nil
}

package images

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/containerd/v2/pkg/archive/compression"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/platforms"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// containerdEnv names a running containerd's socket (with the CRI plugin,
// configured as internal/agent/containerd configures it) for the tests
// below; without it they are skipped. They import into its k8s.io
// namespace and leave the images there.
const containerdEnv = "K3HA_TEST_CONTAINERD"

func testClient(t *testing.T) (*client.Client, string) {
	t.Helper()
	sock := os.Getenv(containerdEnv)
	if sock == "" {
		t.Skipf("set %s to a containerd socket to run", containerdEnv)
	}
	c, err := client.New(sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, sock
}

func TestEnsurePauseInContainerd(t *testing.T) {
	c, sock := testClient(t)
	ctx := context.Background()
	if err := EnsurePause(ctx, c, runtime.GOARCH); err != nil {
		t.Fatal(err)
	}
	nsctx := namespaces.WithNamespace(ctx, Namespace)
	first, err := c.ImageService().Get(nsctx, PauseRef)
	if err != nil {
		t.Fatal(err)
	}
	// A second call finds it and leaves it alone.
	if err := EnsurePause(ctx, c, runtime.GOARCH); err != nil {
		t.Fatal(err)
	}
	second, err := c.ImageService().Get(nsctx, PauseRef)
	if err != nil {
		t.Fatal(err)
	}
	if !second.UpdatedAt.Equal(first.UpdatedAt) {
		t.Error("EnsurePause imported the same image again")
	}

	// The CRI, as the kubelet asks it: known, pinned, with our ID.
	img, _ := PauseImage(runtime.GOARCH)
	id, _ := img.ID()
	st := criImage(t, sock, PauseRef)
	if st == nil || st.Id != id || !st.Pinned {
		t.Fatalf("CRI ImageStatus(%s) = %+v; want ID %s, pinned", PauseRef, st, id)
	}

	// And it runs: a container of the image stays up until killed.
	runPause(t, c, nsctx)
}

func TestImportDirInContainerd(t *testing.T) {
	c, sock := testClient(t)
	ctx := context.Background()
	dir := t.TempDir()

	plain := ImageFromBinary("docker.io/k3ha/import-plain:1", runtime.GOARCH, []byte("plain"), "a")
	var buf bytes.Buffer
	if err := WriteArchive(&buf, plain); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a-plain.tar"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	zipped := ImageFromBinary("registry.example:5000/k3ha/import-gz:2", runtime.GOARCH, []byte("gz"))
	buf.Reset()
	zw := gzip.NewWriter(&buf)
	if err := WriteArchive(zw, zipped); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	if err := os.WriteFile(filepath.Join(dir, "b-gz.tar.gz"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}

	n, err := ImportDir(ctx, c, dir)
	if err != nil || n != 2 {
		t.Fatalf("ImportDir = %d, %v; want 2 files", n, err)
	}
	for _, img := range []Image{plain, zipped} {
		id, _ := img.ID()
		if st := criImage(t, sock, img.Ref); st == nil || st.Id != id || !st.Pinned {
			t.Errorf("CRI ImageStatus(%s) = %+v; want ID %s, pinned", img.Ref, st, id)
		}
		ci, err := c.GetImage(namespaces.WithNamespace(ctx, Namespace), img.Ref)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := ci.IsUnpacked(namespaces.WithNamespace(ctx, Namespace), Snapshotter); !ok || err != nil {
			t.Errorf("%s not unpacked for %s: %v", img.Ref, Snapshotter, err)
		}
	}
	// The kubelet may use the short name; the CRI normalizes it.
	if st := criImage(t, sock, "k3ha/import-plain:1"); st == nil {
		t.Error("CRI does not find k3ha/import-plain:1")
	}

	// A broken file is an error that names it; the good ones still count.
	if err := os.WriteFile(filepath.Join(dir, "c-broken.tar"), []byte("garbage, not a tar"), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err = ImportDir(ctx, c, dir)
	if n != 2 || err == nil || !strings.Contains(err.Error(), "c-broken.tar") {
		t.Fatalf("ImportDir = %d, %v; want 2 and an error naming c-broken.tar", n, err)
	}
	t.Logf("broken file: %v", err)
}

// TestImportOCILayoutInContainerd re-imports an image the way `ctr export`
// writes it (an OCI layout, here without manifest.json and zstd-compressed).
func TestImportOCILayoutInContainerd(t *testing.T) {
	c, sock := testClient(t)
	ctx := namespaces.WithNamespace(context.Background(), Namespace)
	img := ImageFromBinary("docker.io/k3ha/import-oci:1", runtime.GOARCH, []byte("oci"))
	var buf bytes.Buffer
	if err := WriteArchive(&buf, img); err != nil {
		t.Fatal(err)
	}
	if _, err := Import(ctx, c, &buf); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	zw, err := compression.CompressStream(&buf, compression.Zstd)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Export(ctx, zw, archive.WithImage(c.ImageService(), img.Ref),
		archive.WithPlatform(platforms.Default()), archive.WithSkipDockerManifest()); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	if err := c.ImageService().Delete(ctx, img.Ref); err != nil {
		t.Fatal(err)
	}
	names, err := Import(ctx, c, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != img.Ref {
		t.Fatalf("imported as %v, want [%s]", names, img.Ref)
	}
	id, _ := img.ID()
	if st := criImage(t, sock, img.Ref); st == nil || st.Id != id || !st.Pinned {
		t.Errorf("CRI ImageStatus(%s) = %+v; want ID %s, pinned", img.Ref, st, id)
	}
}

// TestImportForeignPlatformInContainerd: an archive with nothing this host
// can run is an error, and leaves no image name behind.
func TestImportForeignPlatformInContainerd(t *testing.T) {
	c, _ := testClient(t)
	foreign := map[string]string{"amd64": "arm64", "arm64": "amd64"}[runtime.GOARCH]
	img := ImageFromBinary("docker.io/k3ha/import-foreign:1", foreign, []byte("x"))
	var buf bytes.Buffer
	if err := WriteArchive(&buf, img); err != nil {
		t.Fatal(err)
	}
	_, err := Import(context.Background(), c, &buf)
	if err == nil || !strings.Contains(err.Error(), "platform") {
		t.Fatalf("want a platform error, got %v", err)
	}
	if _, err := c.ImageService().Get(namespaces.WithNamespace(context.Background(), Namespace), img.Ref); err == nil {
		t.Error("the failed import left an image record")
	}
}

// criImage asks the CRI image service for ref's status; nil if unknown.
func criImage(t *testing.T, sock, ref string) *cri.Image {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The CRI learns of imported images from containerd's events: give it
	// a moment.
	for {
		resp, err := cri.NewImageServiceClient(conn).ImageStatus(ctx, &cri.ImageStatusRequest{Image: &cri.ImageSpec{Image: ref}})
		if err != nil {
			t.Fatalf("CRI ImageStatus %s: %v", ref, err)
		}
		if resp.Image != nil || ctx.Err() != nil {
			return resp.Image
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func runPause(t *testing.T, c *client.Client, ctx context.Context) {
	img, err := c.GetImage(ctx, PauseRef)
	if err != nil {
		t.Fatal(err)
	}
	id := "k3ha-images-test-pause"
	if old, err := c.LoadContainer(ctx, id); err == nil {
		_ = old.Delete(ctx, client.WithSnapshotCleanup)
	}
	ctr, err := c.NewContainer(ctx, id,
		client.WithSnapshotter(Snapshotter),
		client.WithNewSnapshot(id, img),
		client.WithNewSpec(oci.WithImageConfig(img)))
	if err != nil {
		t.Fatal(err)
	}
	defer ctr.Delete(context.WithoutCancel(ctx), client.WithSnapshotCleanup)
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatal(err)
	}
	defer task.Delete(context.WithoutCancel(ctx), client.WithProcessKill)
	exited, err := task.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if st, err := task.Status(ctx); err != nil || st.Status != client.Running {
		t.Fatalf("pause container: %+v, %v; want running", st, err)
	}
	// SIGTERM is dropped (PID 1 without handlers); SIGKILL ends it, as the
	// CRI stops sandboxes.
	if err := task.Kill(ctx, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-exited:
		t.Fatalf("pause exited on SIGTERM: %d", s.ExitCode())
	case <-time.After(300 * time.Millisecond):
	}
	if err := task.Kill(ctx, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-exited:
		if s.ExitCode() != 128+9 {
			t.Errorf("exit code %d, want 137", s.ExitCode())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("pause did not die of SIGKILL")
	}
}

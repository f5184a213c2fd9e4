// Command pack builds bin/k3ha's payload (see internal/payload):
//
//	pack image NAME PROGRAM OUT.tar   packs a packaged component's program as its image
//	pack append EXE DIR               appends DIR as EXE's payload
//
// `make build` runs it; it is not part of k3ha.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/k3ha/k3ha/internal/agent/images"
	"github.com/k3ha/k3ha/internal/packaged"
	"github.com/k3ha/k3ha/internal/payload"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pack:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) == 4 && args[0] == "image":
		return packImage(args[1], args[2], args[3])
	case len(args) == 3 && args[0] == "append":
		return payload.Append(args[1], args[2])
	}
	return fmt.Errorf("usage: pack image NAME PROGRAM OUT.tar | pack append EXE DIR")
}

// packImage writes the image archive and, beside it, its reference and ID,
// so that a node can tell without reading the archive whether it has it.
func packImage(name, program, out string) error {
	spec := packaged.ImageByName(name)
	data, err := os.ReadFile(program)
	if err != nil {
		return err
	}
	img := images.Image{
		Ref:        spec.Ref(),
		Arch:       runtime.GOARCH,
		Files:      []images.File{{Path: spec.Path, Mode: 0o755, Data: data}},
		Entrypoint: []string{spec.Path},
		Env:        spec.Env,
	}
	id, err := img.ID()
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := images.WriteArchive(&b, img); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
		return err
	}
	meta, err := json.Marshal(images.Packed{Ref: img.Ref, ID: id})
	if err != nil {
		return err
	}
	return os.WriteFile(images.PackedMetaPath(out), meta, 0o644)
}

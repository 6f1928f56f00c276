// Command mkimage writes a single-layer container image as an OCI image-layout tarball that
// `ctr -n k8s.io images import` loads, without Docker or a registry (hack/node builds the node
// tier's images with it):
//
//	mkimage -o image.tar -name kpo.local/e2e/pause:v1 -entrypoint /pause /pause=./bin/pause
//
// Each argument PATH=FILE puts the local FILE at PATH in the image, mode 0755, owned by root;
// parent directories are created. Timestamps are fixed, so the same inputs give the same image.
package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"
)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int               `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    map[string]string `json:"platform,omitempty"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run() error {
	out := flag.String("o", "", "output tarball")
	name := flag.String("name", "", "image name, e.g. kpo.local/e2e/fn:v1")
	entrypoint := flag.String("entrypoint", "", "entrypoint (one path)")
	user := flag.String("user", "65532:65532", "user of the image config; empty: none (the image runs as root unless told otherwise)")
	flag.Parse()
	if *out == "" || *name == "" || flag.NArg() == 0 {
		return errors.New("usage: mkimage -o OUT.tar -name NAME [-entrypoint PATH] [-user UID:GID] PATH=FILE [PATH=FILE ...]")
	}
	files := map[string]string{}
	for _, arg := range flag.Args() {
		dst, src, ok := strings.Cut(arg, "=")
		if !ok {
			return fmt.Errorf("%q is not PATH=FILE", arg)
		}
		files[strings.TrimPrefix(path.Clean("/"+dst), "/")] = src
	}
	layer, err := layerTar(files)
	if err != nil {
		return err
	}
	epoch := time.Unix(0, 0).UTC()
	cfg := map[string]any{
		"created":      epoch.Format(time.RFC3339),
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"config": map[string]any{
			"Env": []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digest(layer)}},
	}
	if *user != "" {
		cfg["config"].(map[string]any)["User"] = *user
	}
	if *entrypoint != "" {
		cfg["config"].(map[string]any)["Entrypoint"] = []string{*entrypoint}
	}
	cfgJSON, _ := json.Marshal(cfg)
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: digest(cfgJSON), Size: len(cfgJSON)},
		"layers":        []descriptor{{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: digest(layer), Size: len(layer)}},
	})
	tag := "latest"
	if i := strings.LastIndex(*name, ":"); i > strings.LastIndex(*name, "/") {
		tag = (*name)[i+1:]
	}
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests": []descriptor{{
			MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: digest(manifest), Size: len(manifest),
			Annotations: map[string]string{"io.containerd.image.name": *name, "org.opencontainers.image.ref.name": tag},
			Platform:    map[string]string{"architecture": runtime.GOARCH, "os": "linux"},
		}},
	})

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "blobs/", Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir}); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "blobs/sha256/", Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir}); err != nil {
		return err
	}
	for _, blob := range [][]byte{layer, cfgJSON, manifest} {
		if err := add("blobs/sha256/"+strings.TrimPrefix(digest(blob), "sha256:"), blob); err != nil {
			return err
		}
	}
	if err := add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := add("index.json", index); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return os.WriteFile(*out, buf.Bytes(), 0o644) //nolint:gosec // G306: an image archive for the container runtime to load; nothing secret in it
}

// layerTar is the image's one layer: files (image path → local file) and their parents.
func layerTar(files map[string]string) ([]byte, error) {
	epoch := time.Unix(0, 0).UTC()
	dirs := map[string]bool{}
	for dst := range files {
		for d := path.Dir(dst); d != "." && d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	var names []string
	for d := range dirs {
		names = append(names, d+"/")
	}
	for f := range files {
		names = append(names, f)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		if strings.HasSuffix(n, "/") {
			if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir}); err != nil {
				return nil, err
			}
			continue
		}
		data, err := os.ReadFile(files[n])
		if err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o755, Size: int64(len(data)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

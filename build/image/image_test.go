package main

import (
	"archive/tar"
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"sigs.k8s.io/yaml"
)

// TestImage builds the image as `go run ./build/image` does, writes it as a tarball, reads it
// back, and checks what the chart relies on: the entrypoint it passes args to, a numeric
// non-root user (runAsNonRoot), a static binary that runs with nothing else in the image, and
// root certificates in the binary. Then it pushes the image to a registry on loopback and
// pulls it back.
func TestImage(t *testing.T) {
	ctx := t.Context()
	root, err := moduleRoot(ctx, ".")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := buildBinary(ctx, root, runtime.GOARCH, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{Binary: bin, Arch: runtime.GOARCH, Version: "0.1.0", Revision: "0123abc", Created: time.Unix(1764547200, 0).UTC()}
	img, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}

	tag, err := name.NewTag("ghcr.io/sluice-dev/sluice:0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "image.tar")
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		t.Fatal(err)
	}
	loaded, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatal(err)
	}
	if want, got := digest(t, img), digest(t, loaded); want != got {
		t.Errorf("the tarball holds %s, built %s", got, want)
	}

	cf, err := loaded.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s, want linux/%s", cf.OS, cf.Architecture, runtime.GOARCH)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/usr/local/bin/sluice"}) || len(cf.Config.Cmd) > 0 {
		t.Errorf("entrypoint %q cmd %q: the chart gives only args, so the entrypoint must be the binary", cf.Config.Entrypoint, cf.Config.Cmd)
	}
	uid, gid, ok := strings.Cut(cf.Config.User, ":")
	if !ok || uid == "0" || gid == "0" || strings.Trim(uid+gid, "0123456789") != "" {
		t.Errorf("user %q: runAsNonRoot needs a numeric non-root uid:gid", cf.Config.User)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version": "0.1.0", "org.opencontainers.image.revision": "0123abc",
		"org.opencontainers.image.source": "https://github.com/sluice-dev/sluice",
	} {
		if got := cf.Config.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	if !cf.Created.Time.Equal(spec.Created) {
		t.Errorf("created %s, want %s", cf.Created.Time, spec.Created)
	}

	files := filesOf(t, loaded)
	for _, f := range []struct {
		name     string
		mode     int64
		uid      int
		contains string
	}{
		{name: "usr/local/bin/sluice", mode: 0o755},
		{name: "etc/passwd", mode: 0o644, contains: "nonroot:x:65532:65532:"},
		{name: "etc/group", mode: 0o644, contains: "nonroot:x:65532:"},
		{name: "home/nonroot", mode: 0o700, uid: 65532},
		{name: "tmp", mode: 0o1777},
	} {
		h, ok := files[f.name]
		switch {
		case !ok:
			t.Errorf("no %s in the image", f.name)
		case h.hdr.Mode != f.mode || h.hdr.Uid != f.uid:
			t.Errorf("%s: mode %o uid %d, want %o uid %d", f.name, h.hdr.Mode, h.hdr.Uid, f.mode, f.uid)
		case !bytes.Contains(h.body, []byte(f.contains)):
			t.Errorf("%s does not contain %q:\n%s", f.name, f.contains, h.body)
		case !h.hdr.ModTime.Equal(spec.Created):
			t.Errorf("%s: modified %s, want the image's creation time %s", f.name, h.hdr.ModTime, spec.Created)
		}
	}

	// The binary from the image: static (no interpreter, no shared library), built without cgo
	// and this machine's paths, with the fallback root certificates, and it runs.
	exe := filepath.Join(t.TempDir(), "sluice")
	if err := os.WriteFile(exe, files["usr/local/bin/sluice"].body, 0o755); err != nil {
		t.Fatal(err)
	}
	ef, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ef.Close() }()
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary asks for a dynamic loader: the image has none")
		}
	}
	if libs, _ := ef.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %q: the image has none", libs)
	}
	info, err := buildinfo.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" || settings["GOOS"] != "linux" {
		t.Errorf("build settings CGO_ENABLED=%q -trimpath=%q GOOS=%q, want 0, true, linux", settings["CGO_ENABLED"], settings["-trimpath"], settings["GOOS"])
	}
	if !slices.ContainsFunc(info.Deps, func(m *debug.Module) bool { return m.Path == "golang.org/x/crypto/x509roots/fallback" }) {
		t.Error("the binary does not carry golang.org/x/crypto/x509roots/fallback: HTTPS to metric and alert services would fail in an image with no certificates")
	}
	help, err := exec.CommandContext(ctx, exe, "--help").CombinedOutput()
	if err != nil || !bytes.Contains(help, []byte("--kube-api-qps")) {
		t.Errorf("sluice --help from the image: %v\n%s", err, help)
	}

	// The same binary builds the same image.
	again, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	if digest(t, again) != digest(t, img) {
		t.Error("two builds of the same binary and time give different images")
	}

	// Pushed to a registry and pulled back.
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	ref, err := name.NewTag(strings.TrimPrefix(reg.URL, "http://") + "/sluice-dev/sluice:0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, loaded, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Image(ref, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if digest(t, pulled) != digest(t, img) {
		t.Errorf("pulled %s, pushed %s", digest(t, pulled), digest(t, img))
	}
}

// TestImageIsTheChartsImage: the image's default name is the one the chart runs.
func TestImageIsTheChartsImage(t *testing.T) {
	o, err := parseFlags([]string{"-o", "x.tar"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../../deploy/helm/sluice/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Image struct{ Repository string } `json:"image"`
	}
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	if got := o.tag.Repository.Name(); got != values.Image.Repository {
		t.Errorf("the image is named %s by default, the chart runs %s", got, values.Image.Repository)
	}
}

func TestParseFlags(t *testing.T) {
	tests := map[string]struct {
		args    []string
		env     string
		wantErr string
	}{
		"tarball":               {args: []string{"-o", "x.tar"}},
		"push to a tag":         {args: []string{"-push", "-tag", "registry.example/sluice:1.2.3", "-platform", "linux/arm64"}},
		"nothing to do":         {args: nil, wantErr: "nothing to do"},
		"tag without a tag":     {args: []string{"-o", "x.tar", "-tag", "registry.example/sluice"}, wantErr: "-tag"},
		"tag with a bad name":   {args: []string{"-o", "x.tar", "-tag", "Registry/UPPER:1"}, wantErr: "-tag"},
		"not linux":             {args: []string{"-o", "x.tar", "-platform", "darwin/arm64"}, wantErr: "-platform"},
		"no arch":               {args: []string{"-o", "x.tar", "-platform", "linux/"}, wantErr: "-platform"},
		"arch with a variant":   {args: []string{"-o", "x.tar", "-platform", "linux/arm/v7"}, wantErr: "-platform"},
		"stray argument":        {args: []string{"-o", "x.tar", "now"}, wantErr: "unexpected arguments"},
		"SOURCE_DATE_EPOCH":     {args: []string{"-o", "x.tar"}, env: "1764547200"},
		"bad SOURCE_DATE_EPOCH": {args: []string{"-o", "x.tar"}, env: "yesterday", wantErr: "SOURCE_DATE_EPOCH"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Setenv("SOURCE_DATE_EPOCH", tt.env)
			o, err := parseFlags(tt.args)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one naming %q", err, tt.wantErr)
			case tt.wantErr == "" && tt.env != "" && o.spec.Created.Unix() != 1764547200:
				t.Errorf("created %s, want SOURCE_DATE_EPOCH's time", o.spec.Created)
			case tt.wantErr == "" && tt.env == "" && !o.spec.Created.Equal(time.Unix(0, 0)):
				t.Errorf("created %s, want the Unix epoch", o.spec.Created)
			}
		})
	}
}

type file struct {
	hdr  *tar.Header
	body []byte
}

// filesOf reads the image's flattened file system, by path (directories without their slash).
func filesOf(t *testing.T, img v1.Image) map[string]file {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]file{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(h.Name, "/")] = file{hdr: h, body: body}
	}
}

func digest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

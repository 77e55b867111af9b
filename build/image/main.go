// Command image builds Sluice's controller image — the image the Helm chart and the kustomize
// base run — without a container engine: the sluice binary, built static for Linux, in one
// layer on an empty base, run as a non-root user (65532), as the chart's securityContext
// (runAsNonRoot, read-only root filesystem) expects. It writes a tarball that `docker load` and
// `crane push` read, or pushes the image to a registry with the credentials of docker's config.
//
//	go run ./build/image -tag ghcr.io/sluice-dev/sluice:0.1.0 -o sluice-image.tar
//	go run ./build/image -tag registry.example/sluice:0.1.0 -platform linux/arm64 -push
//
// The binary needs nothing from the image: it is linked without cgo and carries Mozilla's root
// certificates for the HTTPS metric and alert services it calls, used where the system has none.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

type options struct {
	tag     name.Tag
	spec    Spec
	out     string
	push    bool
	workDir string
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	tag := fs.String("tag", "ghcr.io/sluice-dev/sluice:dev", "the image's name and tag")
	platform := fs.String("platform", "linux/"+runtime.GOARCH, "os/arch to build for (linux only)")
	fs.StringVar(&o.spec.Version, "version", "dev", "the release, in the image's org.opencontainers.image.version label")
	fs.StringVar(&o.out, "o", "", "write the image to this tarball (docker load, crane push)")
	fs.BoolVar(&o.push, "push", false, "push the image to -tag's registry (credentials from docker's config)")
	fs.StringVar(&o.workDir, "C", ".", "a directory inside the Sluice module to build from")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	t, err := name.NewTag(*tag, name.StrictValidation)
	if err != nil {
		return o, fmt.Errorf("-tag %q: want registry/repository:tag: %w", *tag, err)
	}
	o.tag = t
	goos, arch, ok := strings.Cut(*platform, "/")
	if !ok || goos != "linux" || arch == "" || strings.Contains(arch, "/") {
		return o, fmt.Errorf("-platform %q: want linux/ARCH, e.g. linux/amd64 or linux/arm64", *platform)
	}
	o.spec.Arch = arch
	if o.out == "" && !o.push {
		return o, errors.New("nothing to do: give -o FILE, -push, or both")
	}
	created, err := sourceDateEpoch(os.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		return o, err
	}
	o.spec.Created = created
	return o, nil
}

// sourceDateEpoch is the image's creation time: SOURCE_DATE_EPOCH when set (reproducible
// builds' convention), else the Unix epoch, so that the same source builds the same image.
func sourceDateEpoch(v string) (time.Time, error) {
	if v == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	s, err := strconv.ParseInt(v, 10, 64)
	if err != nil || s < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since the Unix epoch", v)
	}
	return time.Unix(s, 0).UTC(), nil
}

func run(ctx context.Context, o options) error {
	root, err := moduleRoot(ctx, o.workDir)
	if err != nil {
		return err
	}
	o.spec.Revision = gitRevision(ctx, root)
	tmp, err := os.MkdirTemp("", "sluice-image-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	fmt.Fprintf(os.Stderr, "building sluice for linux/%s …\n", o.spec.Arch)
	o.spec.Binary, err = buildBinary(ctx, root, o.spec.Arch, tmp)
	if err != nil {
		return err
	}
	img, err := Build(o.spec)
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	if o.out != "" {
		if err := tarball.WriteToFile(o.out, o.tag, img); err != nil {
			return fmt.Errorf("write %s: %w", o.out, err)
		}
		fmt.Fprintf(os.Stderr, "wrote %s (%s, %s): docker load -i %s\n", o.out, o.tag, digest, o.out)
	}
	if o.push {
		if err := remote.Write(o.tag, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
			return fmt.Errorf("push %s: %w", o.tag, err)
		}
		fmt.Fprintf(os.Stderr, "pushed %s@%s\n", o.tag, digest)
	}
	return nil
}

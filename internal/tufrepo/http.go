package tufrepo

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// ServeOptions configures the HTTPS and CoAP servers.
type ServeOptions struct {
	// Errors receives errors that do not stop the server (failed TLS
	// handshakes, malformed datagrams, write failures). Nil discards them.
	// The CoAP servers call it from several goroutines, at most ten times
	// a second, and count what they hold back in the next error.
	Errors func(error)
	// BlockSize is the CoAP Block2 size used when a client asks for none or
	// for a larger one: a power of two from 16 to 1024. Zero means 1024.
	BlockSize int
	// Middleware, if not nil, wraps the HTTPS handler (the demo limits the
	// bandwidth with it).
	Middleware func(http.Handler) http.Handler
}

func (o ServeOptions) errorf(format string, args ...any) {
	if o.Errors != nil {
		o.Errors(fmt.Errorf(format, args...))
	}
}

// shutdownGrace bounds how long ServeHTTPS waits for requests in flight.
const shutdownGrace = 5 * time.Second

// ServeHTTPS serves DIR/repository over HTTPS on ln until ctx is done, then
// shuts down gracefully and returns nil. ln is closed on return. The caller
// binds ln (net.Listen("tcp", "127.0.0.1:0")) and so knows the address to
// print before serving. tlsConfig must carry a certificate (see
// GenerateSelfSigned and LoadTLSConfig).
func ServeHTTPS(ctx context.Context, ln net.Listener, dir string, tlsConfig *tls.Config, opts ServeOptions) error {
	if tlsConfig == nil || (len(tlsConfig.Certificates) == 0 && tlsConfig.GetCertificate == nil) {
		_ = ln.Close()
		return fmt.Errorf("serve https: %w: TLS config without a certificate", ErrInvalid)
	}
	h := NewHandler(dir)
	if opts.Middleware != nil {
		h = opts.Middleware(h)
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         tlsConfig.Clone(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(errorWriter{opts}, "", 0),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve https %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	<-errc // http.ErrServerClosed
	return nil
}

// errorWriter turns http.Server's log lines into ServeOptions.Errors calls.
type errorWriter struct{ opts ServeOptions }

func (w errorWriter) Write(p []byte) (int, error) {
	w.opts.errorf("https: %s", strings.TrimSpace(string(p)))
	return len(p), nil
}

// NewHandler serves the files of DIR/repository: GET and HEAD only, no
// directory listings, no dot files, nothing outside the repository (keys
// live beside it, never under it), with Range and ETag support.
func NewHandler(dir string) http.Handler {
	return &handler{root: filepath.Join(dir, repositoryDir)}
}

type handler struct{ root string }

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	f, fi, err := openServed(h.root, r.URL.Path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			http.NotFound(w, r)
			return
		}
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	hd := w.Header()
	hd.Set("ETag", `"`+hex.EncodeToString(fileETag(fi))+`"`)
	hd.Set("Content-Type", contentType(fi.Name()))
	hd.Set("X-Content-Type-Options", "nosniff")
	if mutableName(fi.Name()) {
		// These names are rewritten by Publish; everything else is named
		// by version or hash and never changes.
		hd.Set("Cache-Control", "no-cache")
	}
	// ServeContent answers Range, If-Range, If-None-Match and HEAD.
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

// openServed opens the regular file at urlPath under root. Every refusal
// (traversal, dot files, directories, special files, missing files) reports
// fs.ErrNotExist so that a client learns nothing about what is not served.
func openServed(root, urlPath string) (*os.File, fs.FileInfo, error) {
	name, ok := servedName(urlPath)
	if !ok {
		return nil, nil, fs.ErrNotExist
	}
	// OpenInRoot also refuses symlinks that lead outside root.
	f, err := os.OpenInRoot(root, filepath.FromSlash(name))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.ELOOP) || leavesRoot(err) {
			return nil, nil, fs.ErrNotExist
		}
		return nil, nil, fmt.Errorf("open %s: %w", name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("stat %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, nil, fs.ErrNotExist
	}
	return f, fi, nil
}

// leavesRoot reports os.OpenInRoot's refusal of a path that leads outside
// the root (through a symlink); the os package does not export that error.
func leavesRoot(err error) bool {
	return strings.Contains(err.Error(), "path escapes from parent")
}

// maxServedPath bounds the length of a request path.
const maxServedPath = 1024

// servedName checks a slash-separated request path segment by segment and
// returns it relative to the repository root.
func servedName(p string) (string, bool) {
	p = strings.TrimPrefix(p, "/")
	if p == "" || len(p) > maxServedPath {
		return "", false
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || seg[0] == '.' || strings.ContainsAny(seg, "\\\x00") {
			return "", false
		}
	}
	return p, true
}

// fileETag identifies a file's content in 8 bytes (the CoAP ETag limit).
// Files here are only ever replaced by rename, never rewritten in place, so
// size and modification time change whenever the content does.
func fileETag(fi fs.FileInfo) []byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(fi.Size()))
	binary.BigEndian.PutUint64(b[8:], uint64(fi.ModTime().UnixNano()))
	sum := sha256.Sum256(append(b[:], fi.Name()...))
	return sum[:8]
}

func contentType(name string) string {
	if strings.HasSuffix(name, ".json") {
		return "application/json"
	}
	return "application/octet-stream"
}

func mutableName(name string) bool {
	switch name {
	case "root.json", "timestamp.json", "snapshot.json", "targets.json":
		return true
	}
	return false
}

package tufclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/step/steptest"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// The integration tests reach most of mapError through real repositories;
// this table covers the errors no test server produces.
func TestMapError(t *testing.T) {
	c := newClient(t, emptyRepo(t).root, newDownloader(t, downloaderConfig(nil)), nil)
	fromFetcher := &step.Error{Result: 404, Detail: "The package server answered HTTP 404 Not Found"}
	var syntaxErr *json.SyntaxError
	errors.As(json.Unmarshal([]byte("{"), &struct{}{}), &syntaxErr)
	tests := []struct {
		name       string
		err        error
		last       string // last URL the recorder saw
		lastData   string
		want       swu.Result
		wantDetail string
	}{
		{"step.Error from the fetcher wins", fmt.Errorf("go-tuf: %w", fromFetcher), "", "", 404, "HTTP 404"},
		{"bare HTTP status", &metadata.ErrDownloadHTTP{StatusCode: 502, URL: "x"}, "", "", 502, "status 502"},
		{"bare HTTP success is not a result", &metadata.ErrDownloadHTTP{StatusCode: 200}, "", "", swu.ResultUpdateFailed, "status 200"},
		{"unsigned", &metadata.ErrUnsignedMetadata{Msg: "x"}, "https://h/metadata/3.root.json", "", swu.ResultValidation, "TUF root metadata is not signed"},
		{"rollback", &metadata.ErrBadVersionNumber{Msg: "x"}, "https://h/metadata/timestamp.json", "", swu.ResultValidation, "TUF timestamp metadata has an older"},
		{"equal version counts as bad", &metadata.ErrEqualVersionNumber{Msg: "x"}, "", "", swu.ResultValidation, "older or unexpected"},
		{"hash", &metadata.ErrLengthOrHashMismatch{Msg: "x"}, "https://h/metadata/4.targets.json", "", swu.ResultValidation, "TUF targets metadata does not match"},
		{"too long", &metadata.ErrDownloadLengthMismatch{Msg: "x"}, "", "", swu.ResultValidation, "longer than allowed"},
		{"other repository error", &metadata.ErrRepository{Msg: "x"}, "", "", swu.ResultValidation, "failed verification"},
		{"malformed JSON", syntaxErr, "https://h/metadata/timestamp.json", "", swu.ResultValidation, "TUF timestamp metadata is malformed"},
		{"malformed metadata", &metadata.ErrValue{Msg: "x"}, "", "", swu.ResultValidation, "malformed"},
		{
			"expired targets read from the bytes", &metadata.ErrExpiredMetadata{Msg: "new targets is expired"},
			"https://h/metadata/7.targets.json", `{"signed":{"expires":"2020-01-02T03:04:05Z"}}`,
			swu.ResultValidation, "TUF targets metadata expired on 2020-01-02T03:04:05Z",
		},
		{"expired, unknown role", &metadata.ErrExpiredMetadata{Msg: "x"}, "", "", swu.ResultValidation, "has expired"},
		{"disk full", &fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}, "", "", swu.ResultNoFlash, "free storage"},
		{"anything else", errors.New("boom"), "", "", swu.ResultUpdateFailed, "failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{lastURL: tt.last, lastData: []byte(tt.lastData)}
			err := c.mapError(t.Context(), "refresh", tt.err, nil, rec)
			var se *step.Error
			if !errors.As(err, &se) {
				t.Fatalf("mapError = %v, want a *step.Error", err)
			}
			if se.Result != tt.want || !strings.Contains(se.Detail, tt.wantDetail) {
				t.Fatalf("mapError = %d %q, want %d and a detail with %q", se.Result, se.Detail, tt.want, tt.wantDetail)
			}
			cause := tt.err
			if inner := (*step.Error)(nil); errors.As(tt.err, &inner) {
				cause = inner // returned as is, without go-tuf's wrapping
			}
			if !errors.Is(err, cause) {
				t.Fatalf("mapError lost the cause %v", cause)
			}
		})
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := c.mapError(ctx, "refresh", errors.New("fetch aborted"), nil, &recorder{})
	if !errors.Is(err, context.Canceled) || steptest.ResultOf(err) != -1 {
		t.Fatalf("mapError after cancel = %v, want context.Canceled without a result", err)
	}
}

func TestRecorderRole(t *testing.T) {
	for url, want := range map[string]string{
		"":                                    "",
		"https://h/repo/metadata/2.root.json": "root",
		"coap://h/metadata/timestamp.json":    "timestamp",
		"https://h/metadata/12.snapshot.json": "snapshot",
		"https://h/metadata/3.targets.json":   "targets",
	} {
		if got := (&recorder{lastURL: url}).lastRole(); got != want {
			t.Errorf("lastRole(%q) = %q, want %q", url, got, want)
		}
	}
}

func TestRepoURL(t *testing.T) {
	tests := []struct {
		in, want string
		result   swu.Result
	}{
		{"https://h.example/repo", "https://h.example/repo", 0},
		{"https://h.example/repo/", "https://h.example/repo", 0},
		{"https://h.example", "https://h.example", 0},
		{"coap://127.0.0.1:5700/", "coap://127.0.0.1:5700", 0},
		{"coaps://[::1]:5684/r", "coaps://[::1]:5684/r", 0},
		{"", "", swu.ResultInvalidURL},
		{"https://h.example/r#frag", "", swu.ResultInvalidURL},
		{"https://h.example/r?", "", swu.ResultInvalidURL},
		{"h.example:80/x", "", swu.ResultInvalidURL},
		{"gopher://h.example", "", swu.ResultUnsupportedProt},
	}
	for _, tt := range tests {
		u, err := repoURL(tt.in)
		if tt.result != 0 {
			if steptest.ResultOf(err) != tt.result {
				t.Errorf("repoURL(%q) = %v, want result %d", tt.in, err, tt.result)
			}
			continue
		}
		if err != nil || u.String() != tt.want {
			t.Errorf("repoURL(%q) = %v, %v; want %s", tt.in, u, err, tt.want)
		}
	}
}

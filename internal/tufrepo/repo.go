package tufrepo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// The four top-level roles, as root metadata names them.
const (
	RoleRoot      = metadata.ROOT
	RoleTargets   = metadata.TARGETS
	RoleSnapshot  = metadata.SNAPSHOT
	RoleTimestamp = metadata.TIMESTAMP
)

// topRoles lists the top-level roles in the order Init creates their keys.
var topRoles = []string{RoleRoot, RoleTargets, RoleSnapshot, RoleTimestamp}

// maxThreshold bounds Threshold: more keys than this is a typo, not a policy.
const maxThreshold = 16

// Thresholds is the number of signatures each role needs. Zero means 1.
// Init creates that many keys per role.
type Thresholds struct {
	Root, Targets, Snapshot, Timestamp int
}

func (t Thresholds) of(role string) int {
	v := map[string]int{RoleRoot: t.Root, RoleTargets: t.Targets, RoleSnapshot: t.Snapshot, RoleTimestamp: t.Timestamp}[role]
	if v == 0 {
		return 1
	}
	return v
}

func (t Thresholds) validate() error {
	for _, r := range topRoles {
		if v := t.of(r); v < 1 || v > maxThreshold {
			return fmt.Errorf("threshold of %s is %d, want 1..%d: %w", r, v, maxThreshold, ErrInvalid)
		}
	}
	return nil
}

// Expiries is how long each role's metadata stays valid after signing.
// Zero fields take the repository's setting (from Init), then the default.
type Expiries struct {
	Root, Targets, Snapshot, Timestamp time.Duration
}

// DefaultExpiries: the timestamp must be re-signed (Publish) at least daily,
// which bounds how long a freeze attack can hide new packages from devices.
var DefaultExpiries = Expiries{
	Root:      365 * 24 * time.Hour,
	Targets:   90 * 24 * time.Hour,
	Snapshot:  7 * 24 * time.Hour,
	Timestamp: 24 * time.Hour,
}

// or fills zero fields of e from d.
func (e Expiries) or(d Expiries) Expiries {
	pick := func(a, b time.Duration) time.Duration {
		if a == 0 {
			return b
		}
		return a
	}
	return Expiries{
		Root:      pick(e.Root, d.Root),
		Targets:   pick(e.Targets, d.Targets),
		Snapshot:  pick(e.Snapshot, d.Snapshot),
		Timestamp: pick(e.Timestamp, d.Timestamp),
	}
}

func (e Expiries) validate() error {
	for role, v := range map[string]time.Duration{RoleRoot: e.Root, RoleTargets: e.Targets, RoleSnapshot: e.Snapshot, RoleTimestamp: e.Timestamp} {
		if v < 0 {
			return fmt.Errorf("expiry of %s is %v: %w", role, v, ErrInvalid)
		}
	}
	return nil
}

// settings is DIR/repo.json.
type settings struct {
	Expiry struct {
		Root      string `json:"root"`
		Targets   string `json:"targets"`
		Snapshot  string `json:"snapshot"`
		Timestamp string `json:"timestamp"`
	} `json:"expiry"`
}

func writeSettings(dir string, e Expiries) error {
	var s settings
	s.Expiry.Root, s.Expiry.Targets = e.Root.String(), e.Targets.String()
	s.Expiry.Snapshot, s.Expiry.Timestamp = e.Snapshot.String(), e.Timestamp.String()
	data, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, settingsFile), append(data, '\n'), 0o644)
}

// readSettings returns the expiries stored by Init, or the defaults when
// repo.json is missing.
func readSettings(dir string) (Expiries, error) {
	data, err := os.ReadFile(filepath.Join(dir, settingsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return DefaultExpiries, nil
	}
	if err != nil {
		return Expiries{}, fmt.Errorf("settings: %w", err)
	}
	var s settings
	if err := json.Unmarshal(data, &s); err != nil {
		return Expiries{}, fmt.Errorf("settings %s: %w", settingsFile, err)
	}
	var e Expiries
	for _, f := range []struct {
		s string
		d *time.Duration
	}{{s.Expiry.Root, &e.Root}, {s.Expiry.Targets, &e.Targets}, {s.Expiry.Snapshot, &e.Snapshot}, {s.Expiry.Timestamp, &e.Timestamp}} {
		if f.s == "" {
			continue
		}
		d, err := time.ParseDuration(f.s)
		if err != nil || d <= 0 {
			return Expiries{}, fmt.Errorf("settings %s: bad expiry %q: %w", settingsFile, f.s, ErrInvalid)
		}
		*f.d = d
	}
	return e.or(DefaultExpiries), nil
}

// InitOptions configures a new repository.
type InitOptions struct {
	Thresholds Thresholds // signatures needed per role; Init makes that many keys
	Expiries   Expiries   // stored in repo.json as the repository's defaults
	Now        time.Time  // signing time; zero means time.Now()
}

// Init creates a repository in dir (created if needed): keys for every
// role, root version 1, and version 1 of targets (empty), snapshot and
// timestamp, so the repository can be served at once. It fails with
// ErrExists when dir already holds a repository.
func Init(dir string, opts InitOptions) error {
	if err := opts.Thresholds.validate(); err != nil {
		return fmt.Errorf("init %s: %w", dir, err)
	}
	if err := opts.Expiries.validate(); err != nil {
		return fmt.Errorf("init %s: %w", dir, err)
	}
	exp := opts.Expiries.or(DefaultExpiries)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("init %s: %w", dir, err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	defer unlock()
	// Checked under the lock so two concurrent Inits cannot both proceed.
	if _, err := os.Stat(filepath.Join(dir, metadataDir, "root.json")); err == nil {
		return fmt.Errorf("init %s: %w", dir, ErrExists)
	}
	for _, d := range []struct {
		name string
		perm fs.FileMode
	}{{keysDir, 0o700}, {metadataDir, 0o755}, {targetsDir, 0o755}, {stagedDir, 0o755}} {
		if err := os.MkdirAll(filepath.Join(dir, d.name), d.perm); err != nil {
			return fmt.Errorf("init %s: %w", dir, err)
		}
	}
	if err := writeSettings(dir, exp); err != nil {
		return fmt.Errorf("init %s: %w", dir, err)
	}

	now := nowOr(opts.Now)
	kr, err := loadKeyring(dir)
	if err != nil {
		return fmt.Errorf("init %s: %w", dir, err)
	}
	root := metadata.Root(expiresAt(now, exp.Root))
	root.Signed.ConsistentSnapshot = true
	for _, role := range topRoles {
		n := opts.Thresholds.of(role)
		for range n {
			k, err := GenerateKey()
			if err != nil {
				return fmt.Errorf("init %s: %w", dir, err)
			}
			if err := kr.addKey(dir, role, k); err != nil {
				return fmt.Errorf("init %s: %w", dir, err)
			}
			pub, err := k.PublicKey()
			if err != nil {
				return fmt.Errorf("init %s: %w", dir, err)
			}
			if err := root.Signed.AddKey(pub, role); err != nil {
				return fmt.Errorf("init %s: add %s key: %w", dir, role, err)
			}
		}
		root.Signed.Roles[role].Threshold = n
	}
	if err := signRole(root, root, kr, RoleRoot); err != nil {
		return fmt.Errorf("init %s: %w", dir, err)
	}
	if err := writeRoot(dir, root); err != nil {
		return fmt.Errorf("init %s: %w", dir, err)
	}
	if _, err := publishLocked(dir, root, kr, nil, exp, now); err != nil {
		return fmt.Errorf("init %s: %w", dir, err)
	}
	return nil
}

// PublishOptions configures Publish.
type PublishOptions struct {
	Expiries Expiries  // zero fields: the repository's setting; Root is unused
	Now      time.Time // signing time; zero means time.Now()
}

// PublishResult names the versions a Publish wrote.
type PublishResult struct {
	TargetsVersion   int64
	SnapshotVersion  int64
	TimestampVersion int64
	TargetsExpires   time.Time
	SnapshotExpires  time.Time
	TimestampExpires time.Time
}

// Publish signs the staged targets (or re-signs the published ones when
// nothing is staged) and new snapshot and timestamp versions, and makes them
// current. See the package documentation for the order of writes.
func Publish(dir string, opts PublishOptions) (PublishResult, error) {
	if err := opts.Expiries.validate(); err != nil {
		return PublishResult{}, fmt.Errorf("publish %s: %w", dir, err)
	}
	unlock, err := lockRepo(dir)
	if err != nil {
		return PublishResult{}, fmt.Errorf("publish: %w", err)
	}
	defer unlock()
	root, err := loadRoot(dir)
	if err != nil {
		return PublishResult{}, fmt.Errorf("publish: %w", err)
	}
	// Completes a rotation interrupted before the root.json copy.
	if err := writeRootCopy(dir, root); err != nil {
		return PublishResult{}, fmt.Errorf("publish %s: %w", dir, err)
	}
	stored, err := readSettings(dir)
	if err != nil {
		return PublishResult{}, fmt.Errorf("publish %s: %w", dir, err)
	}
	kr, err := loadKeyring(dir)
	if err != nil {
		return PublishResult{}, fmt.Errorf("publish %s: %w", dir, err)
	}
	staged, err := loadStaged(dir)
	if err != nil {
		return PublishResult{}, fmt.Errorf("publish %s: %w", dir, err)
	}
	var content *metadata.TargetsType
	if staged != nil {
		content = &staged.Signed
	}
	res, err := publishLocked(dir, root, kr, content, opts.Expiries.or(stored), nowOr(opts.Now))
	if err != nil {
		return PublishResult{}, fmt.Errorf("publish %s: %w", dir, err)
	}
	if err := os.Remove(filepath.Join(dir, stagedFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, fmt.Errorf("publish %s: clear staged: %w", dir, err)
	}
	return res, nil
}

// publishPlan is signed metadata ready to be written.
type publishPlan struct {
	result PublishResult
	files  []planFile // in write order; the last is timestamp.json
}

type planFile struct {
	name string
	data []byte
}

// publishLocked signs and writes targets, snapshot and timestamp. The
// caller holds the lock.
func publishLocked(dir string, root *metadata.Metadata[metadata.RootType], kr *keyring, content *metadata.TargetsType, exp Expiries, now time.Time) (PublishResult, error) {
	plan, err := preparePublish(dir, root, kr, content, exp, now)
	if err != nil {
		return PublishResult{}, err
	}
	if err := plan.commit(dir, nil); err != nil {
		return PublishResult{}, err
	}
	return plan.result, nil
}

// preparePublish signs targets, snapshot and timestamp, each one version
// above the current, under root, without writing anything. content is the
// targets to publish; nil re-signs the published ones.
func preparePublish(dir string, root *metadata.Metadata[metadata.RootType], kr *keyring, content *metadata.TargetsType, exp Expiries, now time.Time) (*publishPlan, error) {
	md := filepath.Join(dir, metadataDir)
	prevTargets, err := loadOptional[metadata.TargetsType](filepath.Join(md, "targets.json"))
	if err != nil {
		return nil, err
	}
	prevSnapshot, err := loadOptional[metadata.SnapshotType](filepath.Join(md, "snapshot.json"))
	if err != nil {
		return nil, err
	}
	prevTimestamp, err := loadOptional[metadata.TimestampType](filepath.Join(md, "timestamp.json"))
	if err != nil {
		return nil, err
	}

	targets := metadata.Targets(expiresAt(now, exp.Targets))
	switch {
	case content != nil:
		targets.Signed.Targets = content.Targets
	case prevTargets != nil:
		targets.Signed.Targets = prevTargets.Signed.Targets
	}
	targets.Signed.Version = versionOf(prevTargets) + 1
	if err := checkTargetFiles(dir, targets.Signed.Targets); err != nil {
		return nil, err
	}
	if err := signRole(targets, root, kr, RoleTargets); err != nil {
		return nil, err
	}
	targetsBytes, err := targets.ToBytes(true)
	if err != nil {
		return nil, fmt.Errorf("encode targets: %w", err)
	}

	snapshot := metadata.Snapshot(expiresAt(now, exp.Snapshot))
	snapshot.Signed.Version = versionOf(prevSnapshot) + 1
	snapshot.Signed.Meta = map[string]*metadata.MetaFiles{"targets.json": metaFile(targets.Signed.Version, targetsBytes)}
	if err := signRole(snapshot, root, kr, RoleSnapshot); err != nil {
		return nil, err
	}
	snapshotBytes, err := snapshot.ToBytes(true)
	if err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}

	timestamp := metadata.Timestamp(expiresAt(now, exp.Timestamp))
	timestamp.Signed.Version = versionOf(prevTimestamp) + 1
	timestamp.Signed.Meta = map[string]*metadata.MetaFiles{"snapshot.json": metaFile(snapshot.Signed.Version, snapshotBytes)}
	if err := signRole(timestamp, root, kr, RoleTimestamp); err != nil {
		return nil, err
	}
	timestampBytes, err := timestamp.ToBytes(true)
	if err != nil {
		return nil, fmt.Errorf("encode timestamp: %w", err)
	}
	return &publishPlan{
		result: PublishResult{
			TargetsVersion:   targets.Signed.Version,
			SnapshotVersion:  snapshot.Signed.Version,
			TimestampVersion: timestamp.Signed.Version,
			TargetsExpires:   targets.Signed.Expires,
			SnapshotExpires:  snapshot.Signed.Expires,
			TimestampExpires: timestamp.Signed.Expires,
		},
		files: []planFile{
			{fmt.Sprintf("%d.targets.json", targets.Signed.Version), targetsBytes},
			{"targets.json", targetsBytes},
			{fmt.Sprintf("%d.snapshot.json", snapshot.Signed.Version), snapshotBytes},
			{"snapshot.json", snapshotBytes},
			{"timestamp.json", timestampBytes},
		},
	}, nil
}

// checkTargetFiles makes sure every target about to be signed is on disk
// under each of its hash names with the recorded length, so a repository is
// never published pointing at packages clients cannot download.
func checkTargetFiles(dir string, targets map[string]*metadata.TargetFiles) error {
	for p, tf := range targets {
		for alg, h := range tf.Hashes {
			fp := targetFilePath(dir, p, h)
			fi, err := os.Stat(fp)
			if err != nil {
				return fmt.Errorf("target %s: %s file: %w: %w", p, alg, ErrNotFound, err)
			}
			if fi.Size() != tf.Length {
				return fmt.Errorf("target %s: %s is %d bytes, metadata says %d: %w", p, fp, fi.Size(), tf.Length, ErrInvalid)
			}
		}
	}
	return nil
}

// commit writes the plan: versioned files first, then beforeTimestamp (a
// new root, when rotating), and the timestamp, the commit point, last.
func (p *publishPlan) commit(dir string, beforeTimestamp func() error) error {
	md := filepath.Join(dir, metadataDir)
	last := len(p.files) - 1
	for _, f := range p.files[:last] {
		if err := writeFileAtomic(filepath.Join(md, f.name), f.data, 0o644); err != nil {
			return err
		}
	}
	if beforeTimestamp != nil {
		if err := beforeTimestamp(); err != nil {
			return err
		}
	}
	return writeFileAtomic(filepath.Join(md, p.files[last].name), p.files[last].data, 0o644)
}

// RotateOptions configures RotateKey.
type RotateOptions struct {
	// OldKeyID is the key to replace. Empty: the role's only key (an error
	// when the role has several).
	OldKeyID string
	// NewKey is the replacement, e.g. from ReadKeyFile of a key made by
	// GenerateKey and WriteKeyFile elsewhere. Nil: a new key is generated.
	NewKey *PrivateKey
	// Expiries for the new root and the re-signed metadata; zero fields
	// take the repository's setting.
	Expiries Expiries
	Now      time.Time // signing time; zero means time.Now()
}

// RotateResult describes a completed rotation.
type RotateResult struct {
	Role        string
	OldKeyID    string
	NewKeyID    string
	RootVersion int64
	Published   PublishResult
}

// RotateKey replaces one key of role with a new one: a new root version,
// signed by the root keys of both the old and the new root so that clients
// follow the chain, then targets, snapshot and timestamp re-signed under it.
// The old private key moves to DIR/keys/retired.
func RotateKey(dir, role string, opts RotateOptions) (RotateResult, error) {
	if !slices.Contains(topRoles, role) {
		return RotateResult{}, fmt.Errorf("rotate: role %q: %w", role, ErrInvalid)
	}
	if err := opts.Expiries.validate(); err != nil {
		return RotateResult{}, fmt.Errorf("rotate %s: %w", role, err)
	}
	unlock, err := lockRepo(dir)
	if err != nil {
		return RotateResult{}, fmt.Errorf("rotate: %w", err)
	}
	defer unlock()
	old, err := loadRoot(dir)
	if err != nil {
		return RotateResult{}, fmt.Errorf("rotate: %w", err)
	}
	stored, err := readSettings(dir)
	if err != nil {
		return RotateResult{}, fmt.Errorf("rotate %s: %w", role, err)
	}
	exp := opts.Expiries.or(stored)
	kr, err := loadKeyring(dir)
	if err != nil {
		return RotateResult{}, fmt.Errorf("rotate %s: %w", role, err)
	}

	ids := old.Signed.Roles[role].KeyIDs
	oldID := opts.OldKeyID
	switch {
	case oldID == "" && len(ids) != 1:
		return RotateResult{}, fmt.Errorf("rotate %s: role has %d keys, say which to replace: %w", role, len(ids), ErrInvalid)
	case oldID == "":
		oldID = ids[0]
	}
	newKey := opts.NewKey
	if newKey == nil {
		if newKey, err = GenerateKey(); err != nil {
			return RotateResult{}, fmt.Errorf("rotate %s: %w", role, err)
		}
	}
	if newKey.ID == oldID {
		return RotateResult{}, fmt.Errorf("rotate %s: new key is the old key: %w", role, ErrInvalid)
	}

	// Copy the old root through its encoding so the two never share maps.
	oldBytes, err := old.ToBytes(false)
	if err != nil {
		return RotateResult{}, fmt.Errorf("rotate %s: %w", role, err)
	}
	next, err := new(metadata.Metadata[metadata.RootType]).FromBytes(oldBytes)
	if err != nil {
		return RotateResult{}, fmt.Errorf("rotate %s: %w", role, err)
	}
	if err := next.Signed.RevokeKey(oldID, role); err != nil {
		return RotateResult{}, fmt.Errorf("rotate %s: key %s: %w: %w", role, oldID, ErrInvalid, err)
	}
	pub, err := newKey.PublicKey()
	if err != nil {
		return RotateResult{}, fmt.Errorf("rotate %s: %w", role, err)
	}
	if err := next.Signed.AddKey(pub, role); err != nil {
		return RotateResult{}, fmt.Errorf("rotate %s: %w", role, err)
	}
	now := nowOr(opts.Now)
	next.Signed.Version = old.Signed.Version + 1
	next.Signed.Expires = expiresAt(now, exp.Root)

	// The new key must be on disk before any root names it, or a crash
	// could leave a root whose key nobody has. If the rotation fails before
	// a root names it, it is removed again.
	_, hadKey := kr.keys[newKey.ID]
	if err := kr.addKey(dir, role, newKey); err != nil {
		return RotateResult{}, fmt.Errorf("rotate %s: %w", role, err)
	}
	rootWritten := false
	defer func() {
		if !rootWritten && !hadKey {
			_ = os.Remove(kr.paths[newKey.ID])
		}
	}()
	// Clients trusting the old root need its threshold of old root keys;
	// the new root must verify itself too. Sign with every root key of both.
	oldRole, newRole := old.Signed.Roles[RoleRoot], next.Signed.Roles[RoleRoot]
	signers := append(append([]string{}, oldRole.KeyIDs...), newRole.KeyIDs...)
	if err := sign(next, kr, RoleRoot, dedupe(signers), 1); err != nil {
		return RotateResult{}, fmt.Errorf("rotate %s: %w", role, err)
	}
	if err := old.VerifyDelegate(RoleRoot, next); err != nil {
		return RotateResult{}, fmt.Errorf("rotate %s: new root does not verify under the old one (root keys offline?): %w: %w", role, ErrNotEnoughKeys, err)
	}
	if err := next.VerifyDelegate(RoleRoot, next); err != nil {
		return RotateResult{}, fmt.Errorf("rotate %s: new root does not verify itself: %w: %w", role, ErrNotEnoughKeys, err)
	}
	// Sign the rest under the new root before writing anything, so a
	// missing key fails the rotation instead of leaving a root that nothing
	// verifies under.
	plan, err := preparePublish(dir, next, kr, nil, exp, now)
	if err != nil {
		return RotateResult{}, fmt.Errorf("rotate %s: re-sign under root %d: %w", role, next.Signed.Version, err)
	}
	writeNext := func() error {
		// From the first byte of N.root.json on, the new key must stay.
		rootWritten = true
		return writeRoot(dir, next)
	}
	if err := plan.commit(dir, writeNext); err != nil {
		return RotateResult{}, fmt.Errorf("rotate %s: interrupted, run publish to complete: %w", role, err)
	}
	if err := kr.retire(dir, oldID); err != nil {
		return RotateResult{}, fmt.Errorf("rotate %s: %w", role, err)
	}
	return RotateResult{Role: role, OldKeyID: oldID, NewKeyID: newKey.ID, RootVersion: next.Signed.Version, Published: plan.result}, nil
}

// TrustedRoot returns the current root metadata, which devices ship as their
// initial trusted root (a device holding any older root follows the chain).
func TrustedRoot(dir string) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(dir, metadataDir, "root.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("trusted root %s: %w", dir, ErrNotRepository)
	}
	if err != nil {
		return nil, fmt.Errorf("trusted root: %w", err)
	}
	return data, nil
}

// loadRoot returns the newest root. That is root.json, unless a rotation
// was interrupted between writing N.root.json and its root.json copy: the
// versioned files are what clients follow, so the highest one wins.
func loadRoot(dir string) (*metadata.Metadata[metadata.RootType], error) {
	data, err := TrustedRoot(dir)
	if err != nil {
		return nil, err
	}
	root, err := new(metadata.Metadata[metadata.RootType]).FromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("load root of %s: %w", dir, err)
	}
	for {
		next := filepath.Join(dir, metadataDir, fmt.Sprintf("%d.root.json", root.Signed.Version+1))
		m, err := loadOptional[metadata.RootType](next)
		if err != nil {
			return nil, err
		}
		if m == nil {
			return root, nil
		}
		root = m
	}
}

// writeRoot writes N.root.json, then the root.json copy.
func writeRoot(dir string, root *metadata.Metadata[metadata.RootType]) error {
	data, err := root.ToBytes(true)
	if err != nil {
		return fmt.Errorf("encode root: %w", err)
	}
	md := filepath.Join(dir, metadataDir)
	if err := writeFileAtomic(filepath.Join(md, fmt.Sprintf("%d.root.json", root.Signed.Version)), data, 0o644); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(md, "root.json"), data, 0o644)
}

// writeRootCopy rewrites root.json from root when it holds another version.
func writeRootCopy(dir string, root *metadata.Metadata[metadata.RootType]) error {
	cur, err := loadOptional[metadata.RootType](filepath.Join(dir, metadataDir, "root.json"))
	if err != nil {
		return err
	}
	if cur != nil && cur.Signed.Version == root.Signed.Version {
		return nil
	}
	// The exact bytes clients fetch as N.root.json.
	data, err := os.ReadFile(filepath.Join(dir, metadataDir, fmt.Sprintf("%d.root.json", root.Signed.Version)))
	if err != nil {
		return fmt.Errorf("root copy: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, metadataDir, "root.json"), data, 0o644)
}

// loadOptional reads metadata at path, or returns nil when there is none.
func loadOptional[T metadata.Roles](path string) (*metadata.Metadata[T], error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	m, err := new(metadata.Metadata[T]).FromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return m, nil
}

func versionOf[T metadata.Roles](m *metadata.Metadata[T]) int64 {
	if m == nil {
		return 0
	}
	switch s := any(&m.Signed).(type) {
	case *metadata.TargetsType:
		return s.Version
	case *metadata.SnapshotType:
		return s.Version
	case *metadata.TimestampType:
		return s.Version
	case *metadata.RootType:
		return s.Version
	}
	return 0
}

// metaFile describes signed metadata bytes for snapshot or timestamp, with
// length and hash so a client can check what it downloads before parsing.
func metaFile(version int64, data []byte) *metadata.MetaFiles {
	mf := metadata.MetaFile(version)
	d := sha256Sum(data)
	mf.Length = int64(len(data))
	mf.Hashes = metadata.Hashes{"sha256": d}
	return mf
}

func nowOr(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}

// expiresAt is now+d in UTC, whole seconds: the form every TUF client
// parses.
func expiresAt(now time.Time, d time.Duration) time.Time {
	return now.Add(d).UTC().Truncate(time.Second)
}

func dedupe(ids []string) []string {
	seen := map[string]bool{}
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

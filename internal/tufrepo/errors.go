package tufrepo

import "errors"

// Sentinel errors; test for them with errors.Is. Returned errors wrap them
// with the detail (path, role, model) that explains which one.
var (
	// ErrNotRepository: the directory holds no initialised repository.
	ErrNotRepository = errors.New("not a TUF repository")
	// ErrExists: Init on an existing repository, or AddTarget of a model
	// and version (or target path) that is already there.
	ErrExists = errors.New("already exists")
	// ErrInvalid: a malformed argument (model, version, file name, role,
	// threshold, expiry, counter).
	ErrInvalid = errors.New("invalid argument")
	// ErrNotEnoughKeys: the private keys in DIR/keys cannot meet a role's
	// signature threshold.
	ErrNotEnoughKeys = errors.New("not enough signing keys")
	// ErrKeyPermissions: a private key file is readable by group or others.
	ErrKeyPermissions = errors.New("private key file permissions too open")
	// ErrLocked: another process is writing the repository.
	ErrLocked = errors.New("repository is locked by another process")
	// ErrNotFound: a target asked for by path is not in the repository.
	ErrNotFound = errors.New("not found")
	// ErrRequirement: a package's custom metadata states a requirement
	// (min_ram) that is malformed. Wrapped together with ErrInvalid.
	ErrRequirement = errors.New("malformed package requirement")
)

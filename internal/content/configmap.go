package content

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"
)

// MaxConfigMapSize is the most content one ConfigMap may hold: the API server refuses a
// ConfigMap whose data and binaryData values together exceed 1 MiB
// (k8s.io/kubernetes/pkg/apis/core/validation.ValidateConfigMap compares the sum of the
// value lengths with core.MaxSecretSize, 1,048,576, and refuses only a larger sum). Keys
// are not counted, and binaryData is counted in raw bytes, not base64.
const MaxConfigMapSize = 1024 * 1024

// ErrTooLarge is wrapped by the error ToConfigMap returns when a package does not fit in
// one ConfigMap.
var ErrTooLarge = errors.New("package too large for one ConfigMap")

// ToConfigMap returns the data and binaryData of the ConfigMap that holds files, keyed by
// EncodeKey. A file whose content is valid UTF-8 goes to data, any other to binaryData, so
// every byte is kept. A map with no entries is returned as nil, as the API server returns
// it. It fails, naming every bad path, when a path is invalid, and with an error wrapping
// ErrTooLarge when the content exceeds MaxConfigMapSize.
func ToConfigMap(files map[string][]byte) (data map[string]string, binaryData map[string][]byte, err error) {
	var errs []error
	size := 0
	for _, path := range slices.Sorted(maps.Keys(files)) {
		content := files[path]
		size += len(content)
		key, err := EncodeKey(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if utf8.Valid(content) {
			if data == nil {
				data = make(map[string]string)
			}
			data[key] = string(content)
			continue
		}
		if binaryData == nil {
			binaryData = make(map[string][]byte)
		}
		binaryData[key] = slices.Clone(content)
	}
	if size > MaxConfigMapSize {
		errs = append(errs, fmt.Errorf("%w: its content is %d bytes (%d files), over the ConfigMap limit of %d bytes: split the package into smaller packages or move large files out of it",
			ErrTooLarge, size, len(files), MaxConfigMapSize))
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return data, binaryData, nil
}

// FromConfigMap returns the package files held by a ConfigMap's data and binaryData. It
// fails, naming every bad key, when a key is not the canonical encoding of a valid path
// (see DecodeKey) or appears in both data and binaryData.
func FromConfigMap(data map[string]string, binaryData map[string][]byte) (map[string][]byte, error) {
	files := make(map[string][]byte, len(data)+len(binaryData))
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(data)) {
		if _, dup := binaryData[key]; dup {
			errs = append(errs, fmt.Errorf("%w: key %q is in both data and binaryData: keep it in only one of them", ErrInvalidKey, key))
			continue
		}
		path, err := DecodeKey(key)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		files[path] = []byte(data[key])
	}
	for _, key := range slices.Sorted(maps.Keys(binaryData)) {
		if _, dup := data[key]; dup {
			continue // reported above
		}
		path, err := DecodeKey(key)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		files[path] = slices.Clone(binaryData[key])
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return files, nil
}

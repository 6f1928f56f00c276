package content

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"maps"
	"slices"
)

// Digest returns "sha256:" and the hex SHA-256 of files, to tell whether a package's
// content changed. It depends only on the paths and their bytes, never on map order: the
// hash covers, for each path in byte-wise sorted order, the path's length as a big-endian
// uint64, the path, the content's length as a big-endian uint64 and the content. The
// length prefixes keep distinct packages from hashing the same bytes (e.g. "ab"+"c" versus
// "a"+"bc"). The format is stable; changing it would make every package look changed.
func Digest(files map[string][]byte) string {
	h := sha256.New()
	var n [8]byte
	for _, path := range slices.Sorted(maps.Keys(files)) {
		binary.BigEndian.PutUint64(n[:], uint64(len(path)))
		h.Write(n[:])
		h.Write([]byte(path))
		content := files[path]
		binary.BigEndian.PutUint64(n[:], uint64(len(content)))
		h.Write(n[:])
		h.Write(content)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

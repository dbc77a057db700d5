package httpapi

import (
	"hash/maphash"
	"slices"
	"sync/atomic"
)

// answerCache keeps recent encoded answers of a view, keyed on the query
// and the replica's version. The version moves with every event the
// replica applies, so an answer found under the same key and version is
// the answer now; a view that moves just answers from scratch. Slots are
// picked by the query's hash and overwritten on a collision: a fixed,
// small cost in memory, and no lock.
type answerCache struct {
	slots [answerSlots]atomic.Pointer[cachedAnswer]
	seed  maphash.Seed
}

const answerSlots = 256

type cachedAnswer struct {
	version uint64
	key     string
	body    []byte
	length  []string // the Content-Length value
}

func newAnswerCache() *answerCache { return &answerCache{seed: maphash.MakeSeed()} }

func (c *answerCache) slot(key string) *atomic.Pointer[cachedAnswer] {
	return &c.slots[maphash.String(c.seed, key)%answerSlots]
}

// get returns the answer to key at version, nil if none is kept.
func (c *answerCache) get(version uint64, key string) *cachedAnswer {
	if a := c.slot(key).Load(); a != nil && a.version == version && a.key == key {
		return a
	}
	return nil
}

// put keeps a copy of body as the answer to key at version. The version
// must be taken before the view was read: if the view moved meanwhile, the
// answer holds a newer state than its key says, and no later request can
// ask for that version again, since versions only grow.
func (c *answerCache) put(version uint64, key string, body []byte) *cachedAnswer {
	a := &cachedAnswer{version: version, key: key, body: slices.Clone(body), length: contentLength(len(body))}
	c.slot(key).Store(a)
	return a
}

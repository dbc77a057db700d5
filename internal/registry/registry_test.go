package registry_test

import (
	"testing"

	"github.com/bookshelf/bookshelf/internal/registry"
	"github.com/bookshelf/bookshelf/internal/registry/registrytest"
)

func TestMemory(t *testing.T) {
	registrytest.Run(t, registry.NewMemory(), "lastreadbooks", 0)
}

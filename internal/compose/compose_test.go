package compose

import "testing"

// A container's service comes from docker-compose's naming, and the
// observers' health is not the system's.
func TestServiceOfAContainer(t *testing.T) {
	p := Project{Name: "bookshelf"}
	for name, want := range map[string]string{
		"bookshelf_books-cut_1":  "books-cut",
		"bookshelf_zipkin_1":     "zipkin",
		"bookshelf_kafka-3_12":   "kafka-3",
		"other_books_1":          "other_books_1",
		"bookshelf_prometheus_1": "prometheus",
	} {
		if got := p.service(name); got != want {
			t.Errorf("service(%q) = %q, want %q", name, got, want)
		}
	}
	if !observer[p.service("bookshelf_zipkin_1")] || observer[p.service("bookshelf_books_1")] {
		t.Error("zipkin is an observer, books is not")
	}
}

package pathtemplate

import "strings"

// Set matches a path against many templates at once through a trie keyed by
// segment. The most specific template wins:
//
//   - when the path's last segment holds a ':', templates with that verb are
//     tried first (grpc-httpjson-transcoding, too, splits the verb before
//     routing); the templates without a verb only if none of those matches;
//   - then, segment by segment, a literal beats "*", which beats "**"
//     (a literal that leads to a dead end falls back to "*", then "**");
//   - remaining ties, between templates of the same shape, go to the lowest id.
//
// The zero Set is empty and ready to use. Add must not run concurrently with
// anything else; Match may run concurrently with other Match calls.
type Set struct {
	root  *node
	n     int
	verbs int // templates with a verb; the rest have none
}

type node struct {
	lits  map[string]*node
	star  *node
	dstar *node // "**" is always last: this node only ends templates
	ends  []terminal
}

// terminal is the template of the lowest id that ends at a node with a verb.
type terminal struct {
	verb string
	id   int
	t    *Template
}

// Add adds t to the set under id, which Match returns when t wins.
func (s *Set) Add(t *Template, id int) {
	if s.root == nil {
		s.root = new(node)
	}
	n := s.root
	for _, seg := range t.segs {
		switch seg.kind {
		case star:
			if n.star == nil {
				n.star = new(node)
			}
			n = n.star
		case doubleStar:
			if n.dstar == nil {
				n.dstar = new(node)
			}
			n = n.dstar
		default:
			child := n.lits[seg.lit]
			if child == nil {
				if n.lits == nil {
					n.lits = make(map[string]*node)
				}
				child = new(node)
				n.lits[seg.lit] = child
			}
			n = child
		}
	}
	s.n++
	if t.verb != "" {
		s.verbs++
	}
	for i, e := range n.ends {
		if e.verb == t.verb {
			if id < e.id {
				n.ends[i] = terminal{verb: t.verb, id: id, t: t}
			}
			return
		}
	}
	n.ends = append(n.ends, terminal{verb: t.verb, id: id, t: t})
}

// Len returns the number of templates added.
func (s *Set) Len() int { return s.n }

// Match returns the id of the most specific template matching the escaped
// path and that template's Match; id is -1 when ok is false. It does not
// allocate.
func (s *Set) Match(path string) (id int, m Match, ok bool) {
	if s.root == nil || path == "" || path[0] != '/' {
		return -1, Match{}, false
	}
	var e *terminal
	last := strings.LastIndexByte(path, '/') + 1
	if c := strings.LastIndexByte(path[last:], ':'); s.verbs > 0 && c > 0 && last+c+1 < len(path) {
		e = s.root.find(path[:last+c], 1, true, path[last+c+1:])
	}
	if e == nil && s.verbs < s.n {
		e = s.root.find(path, 1, path != "/", "")
	}
	if e == nil {
		return -1, Match{}, false
	}
	m, ok = e.t.Match(path)
	return e.id, m, ok
}

// find returns the best template that ends with verb and matches the
// segments of body from pos on (none when more is false).
func (n *node) find(body string, pos int, more bool, verb string) *terminal {
	if !more {
		if e := n.end(verb); e != nil {
			return e
		}
		if n.dstar != nil {
			return n.dstar.end(verb)
		}
		return nil
	}
	end := segEnd(body, pos)
	seg := body[pos:end]
	if seg == "" {
		return nil
	}
	if child := n.lits[seg]; child != nil {
		if e := child.find(body, end+1, end < len(body), verb); e != nil {
			return e
		}
	}
	if n.star != nil {
		if e := n.star.find(body, end+1, end < len(body), verb); e != nil {
			return e
		}
	}
	if n.dstar != nil && allNonEmpty(body[pos:]) {
		return n.dstar.end(verb)
	}
	return nil
}

func (n *node) end(verb string) *terminal {
	for i := range n.ends {
		if n.ends[i].verb == verb {
			return &n.ends[i]
		}
	}
	return nil
}

package store

import "slices"

// Add records a removed session record.
func (r *Revocation) Add(id string, live bool) {
	r.SessionIDs = append(r.SessionIDs, id)
	if live {
		r.Live++
	}
}

// Merge adds what another revocation of the same user removed.
func (r *Revocation) Merge(o Revocation) {
	r.SessionIDs = append(r.SessionIDs, o.SessionIDs...)
	r.Live += o.Live
}

// Sorted returns r with SessionIDs sorted and never nil, as Backend methods return it.
func (r Revocation) Sorted() Revocation {
	if r.SessionIDs == nil {
		r.SessionIDs = []string{}
	}
	slices.Sort(r.SessionIDs)
	return r
}

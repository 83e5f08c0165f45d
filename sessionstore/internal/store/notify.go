package store

// ChangeNotifier is implemented by a backend that learns by itself of changes any store sharing
// its database records (postgres: LISTEN/NOTIFY), so that a long-poll of GET /v1/changes wakes at
// once for another replica's write instead of at the API's next poll of the feed's head.
type ChangeNotifier interface {
	// ChangeSignal returns a channel closed at the next change recorded (or when the backend may
	// have missed some, e.g. after a reconnect); take it before reading the feed.
	ChangeSignal() <-chan struct{}
}

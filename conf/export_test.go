package conf

// SetEUID makes the secret-file checks believe the process runs as uid
// (tests run as root, where any owner is accepted); it returns a func that
// restores the real one.
func SetEUID(uid int) (restore func()) {
	old := geteuid
	geteuid = func() int { return uid }
	return func() { geteuid = old }
}

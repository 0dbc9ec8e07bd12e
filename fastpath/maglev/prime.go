package maglev

// IsPrime reports whether n is prime. It uses trial division, which is
// plenty for table sizes up to MaxSize (at most ~1400 divisions) and keeps
// the package free of math/big.
func IsPrime(n int) bool {
	if n < 2 {
		return false
	}
	if n%2 == 0 {
		return n == 2
	}
	if n%3 == 0 {
		return n == 3
	}
	// Every prime above 3 is 6k±1.
	for d := 5; d <= n/d; d += 6 {
		if n%d == 0 || n%(d+2) == 0 {
			return false
		}
	}
	return true
}

;;;; Bignums: Guile gives GMP's memory to the collector (its limbs are
;;;; collected memory), so every intermediate result of these computations
;;;; is garbage the collector must reclaim while the live ones stay intact.
;;;; Factorials, powers, Fibonacci numbers, gcd and lcm, modular powers,
;;;; square roots, rationals, bit operations, printing and reading back.

(use-modules (srfi srfi-1))

(define (factorial n)
  (let loop ((i 2) (acc 1))
    (if (> i n) acc (loop (+ i 1) (* acc i)))))

(define (fib n)
  (let loop ((i 0) (a 0) (b 1))
    (if (= i n) a (loop (+ i 1) b (+ a b)))))

(define (digit-sum n)
  (string-fold (lambda (c acc) (+ acc (- (char->integer c) 48))) 0 (number->string n)))

(define (show label n)
  ;; Digits, digit sum, and the first and last 40 digits.
  (let ((text (number->string n)))
    (format #t "~a: ~a digits, digit sum ~a, ~a...~a~%"
            label (string-length text) (digit-sum n)
            (string-take text (min 40 (string-length text)))
            (string-take-right text (min 40 (string-length text))))))

(define f-small (factorial 100))
(format #t "100! = ~a~%" f-small)
(define f-big (factorial (pick 6000 20000)))
(show (format #f "~a!" (pick 6000 20000)) f-big)
(define f-mid (factorial (pick 4000 15000)))
(full-gc)
(report "factorial quotient" (= (quotient f-big f-mid)
                                (fold * 1 (iota (- (pick 6000 20000) (pick 4000 15000))
                                                (+ 1 (pick 4000 15000))))))
(report "factorial divisible" (= 0 (remainder f-big f-mid)))

(show "3^20000" (expt 3 (pick 100000 1000000)))
(format #t "2^1000-1 in hex: ~a~%" (number->string (- (expt 2 1000) 1) 16))
(format #t "7^777 mod 10^30: ~a~%" (modulo (expt 7 777) (expt 10 30)))
(format #t "modulo-expt 2^(10^18) mod 1000000007: ~a~%"
        (modulo-expt 2 (expt 10 18) 1000000007))

;; Fibonacci: gcd(F(m), F(n)) = F(gcd(m, n)).
(define fib-n (pick 30000 150000))
(define big-fib (fib fib-n))
(show (format #f "F(~a)" fib-n) big-fib)
(report "gcd of Fibonacci numbers"
        (every (lambda (pair)
                 (let ((m (car pair)) (n (cdr pair)))
                   (= (gcd (fib m) (fib n)) (fib (gcd m n)))))
               '((1200 . 900) (1001 . 1430) (2048 . 3072) (997 . 1009))))
(report "lcm" (= (lcm (fib 300) (fib 200)) (/ (* (fib 300) (fib 200)) (fib 100))))

;; Square roots.
(call-with-values (lambda () (exact-integer-sqrt (* f-big f-big)))
  (lambda (root rest)
    (report "exact-integer-sqrt of a square" (and (= root f-big) (= rest 0)))))
(call-with-values (lambda () (exact-integer-sqrt (+ 1 (expt 10 2001))))
  (lambda (root rest)
    (format #t "isqrt(10^2001+1): ~a digits, remainder ~a digits~%"
            (string-length (number->string root)) (string-length (number->string rest)))))

;; Rationals: the harmonic number H(n) as an exact fraction.
(define harmonic
  (let loop ((i 1) (acc 0))
    (if (> i (pick 1500 5000)) acc (loop (+ i 1) (+ acc (/ 1 i))))))
(format #t "H(~a): numerator ~a digits, denominator ~a digits, ~a~%"
        (pick 1500 5000)
        (string-length (number->string (numerator harmonic)))
        (string-length (number->string (denominator harmonic)))
        (exact->inexact harmonic))

;; Bit operations.
(define mask (- (ash 1 4000) 1))
(report "logand/logior/logxor/ash"
        (and (= (logand f-big mask) (- f-big (ash (ash f-big -4000) 4000)))
             (= (logxor (logxor f-big big-fib) big-fib) f-big)
             (= (logior f-big 0) f-big)
             (= (integer-length (ash 1 12345)) 12346)
             (= (logcount (- (ash 1 5000) 1)) 5000)))

;; Printing and reading back, in several bases, with garbage in between.
(report "number->string and string->number round trips"
        (every (lambda (radix)
                 (every (lambda (n) (= n (string->number (number->string n radix) radix)))
                        (list f-big big-fib (- f-big) (expt 3 1001) harmonic)))
               '(2 8 10 16 36)))

;; Many short-lived bignums: the products of a running window.
(define (window-products count)
  (let loop ((i 0) (acc 0))
    (if (= i count)
        acc
        (loop (+ i 1) (modulo (+ acc (* (expt 12345678901 (+ 5 (modulo i 40)))
                                        (+ i (expt 2 200))))
                              (- (expt 2 521) 1))))))
(format #t "window products mod M521: ~a~%" (window-products (pick 100000 800000)))
(full-gc)
(report "live bignums unchanged after gc"
        (and (= f-big (factorial (pick 6000 20000)))
             (= big-fib (fib fib-n))
             (= f-small (factorial 100))))

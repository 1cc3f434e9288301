;; Standard input of `guile -q` (the REPL, not a terminal: no prompts).
;; Every value is printed as $N = ...; nothing here prints an address. An
;; error enters a nested REPL, which ,q leaves; (exit) ends it all.
(define (square x) (* x x))
(square 12)
(map square (iota 10))
(values 1 "two" #\3)
(use-modules (srfi srfi-9) (ice-9 match))
(define-record-type point (make-point x y) point? (x point-x) (y point-y))
(point-y (make-point 1 2))
(list 'a "b" #\c 1.5 2/3 #(1 2 3) #u8(4 5))
(define big (iota 1000000))
(length big)
(apply + big)
(gc)
(define table (make-hash-table))
(for-each (lambda (i) (hash-set! table (number->string i) i)) (iota 100000))
(hash-ref table "99999")
(car 1)
(+ 1 1)
(vector-ref (vector 1 2) 5)
,q
(length big)
,q
(string-append "back " "at " "the top")
(match '(1 (2 3)) ((a (b c)) (+ a b c)))
,expand (let loop ((i 0)) (if (< i 3) (loop (+ i 1)) i))
(define (count-up n) (let loop ((i 0) (acc '())) (if (= i n) (length acc) (loop (+ i 1) (cons (make-string 10) acc)))))
(count-up 500000)
(gc)
(call-with-output-string (lambda (port) (display (reverse (iota 10)) port)))
undefined-variable
,q
(begin (set! big #f) (gc) (count-up 100000))
(exit 5)
(display "not reached")

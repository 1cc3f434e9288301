;;;; Given to `guile -c` as its expression (run_workload.py passes this
;;;; file's text, with two arguments after it). Everyday Scheme, then
;;;; gc-stats: which keys it has (not their values) and facts about the
;;;; values that hold on any collector: counts that grow, sizes that cover
;;;; what is live, no collection while collection is disabled.

(use-modules (ice-9 exceptions)
             (ice-9 format)
             (ice-9 match)
             (srfi srfi-1)
             (rnrs bytevectors))

(format #t "arguments: ~s~%" (cdr (command-line)))
(format #t "arithmetic: ~a ~a ~a ~a ~a~%"
        (+ 1/3 2/7) (exact->inexact 22/7) (expt 2 100) (sqrt -4) (inexact->exact (floor 2.5)))
(format #t "strings: ~s ~s ~s~%"
        (string-upcase "hello") (string-split "a,b,,c" #\,) (string-pad (number->string 42) 6))
(format #t "lists: ~s ~s~%"
        (sort (list 5 3 9 1 7) <) (fold-right cons* '() '(a b c) '(1 2 3)))
(format #t "match: ~s~%"
        (map (lambda (x) (match x ((a b) (list 'two a b)) ((a . rest) (list 'more a)) (_ 'other)))
             '((1 2) (1 2 3) 4)))
(format #t "call/cc: ~a~%"
        (call-with-current-continuation (lambda (k) (for-each (lambda (x) (when (> x 2) (k x))) '(1 2 3 4)) 0)))
(format #t "dynamic-wind: ~s~%"
        (let ((trail '()))
          (catch 'oops
            (lambda ()
              (dynamic-wind (lambda () (set! trail (cons 'in trail)))
                            (lambda () (throw 'oops))
                            (lambda () (set! trail (cons 'out trail)))))
            (lambda (key . args) (set! trail (cons key trail))))
          (reverse trail)))
(format #t "exception: ~s~%"
        (with-exception-handler
         (lambda (e) (list 'caught (exception-message e)))
         (lambda () (raise-exception (make-exception-with-message "boom")))
         #:unwind? #t))
(format #t "string port: ~s~%"
        (call-with-output-string (lambda (port) (write '(a "b" #\c 1.5) port))))

;; gc-stats.
(define (stats) (gc-stats))
(define (stat key) (assq-ref (stats) key))
(format #t "gc-stats keys: ~a~%" (sort (map (lambda (entry) (symbol->string (car entry))) (stats)) string<?))
(format #t "gc-stats values: all exact non-negative integers: ~a~%"
        (every (lambda (entry) (and (exact-integer? (cdr entry)) (>= (cdr entry) 0))) (stats)))
(define mib (* 1024 1024))
(define total-before (stat 'heap-total-allocated))
(define big (make-bytevector (* 20 mib) 1))
(format #t "heap-total-allocated grew by at least 16 MiB after 20 MiB: ~a~%"
        (>= (- (stat 'heap-total-allocated) total-before) (* 16 mib)))
(format #t "heap-size at least 20 MiB while 20 MiB are live: ~a~%"
        (>= (stat 'heap-size) (* 20 mib)))
(format #t "heap-free-size at most heap-size: ~a~%"
        (<= (stat 'heap-free-size) (stat 'heap-size)))
(define times-before (stat 'gc-times))
(gc)
(format #t "gc-times grew after (gc): ~a~%" (> (stat 'gc-times) times-before))
(format #t "the bytevector survived: ~a~%"
        (and (= (bytevector-length big) (* 20 mib)) (= 1 (bytevector-u8-ref big (- (* 20 mib) 1)))))
(gc-disable)
(define times-disabled (stat 'gc-times))
(define garbage
  (let loop ((i 0) (n 0))
    (if (= i 40) n (loop (+ i 1) (+ n (bytevector-length (make-bytevector mib i)))))))
(format #t "no collection while disabled (~a MiB made): ~a~%"
        (quotient garbage mib) (= times-disabled (stat 'gc-times)))
(gc-enable)
(set! big #f)
(gc)
(format #t "gc-times grew after gc-enable and (gc): ~a~%" (> (stat 'gc-times) times-disabled))

;;;; A module of our own for the guile_compile workload, which copies it to
;;;; $WORK/src/mgc/compiled.scm, compiles it (its file name is recorded
;;;; relative to the load path, so the .go does not depend on $WORK), and
;;;; then loads the .go and calls it. Macros of both kinds, records,
;;;; closures, inlinable procedures, constants of many types.

(define-module (mgc compiled)
  #:use-module (srfi srfi-1)
  #:use-module (srfi srfi-9)
  #:use-module (ice-9 match)
  #:use-module (rnrs bytevectors)
  #:export (run-all table-of-constants))

(define-record-type <account>
  (make-account name balance history)
  account?
  (name account-name)
  (balance account-balance set-account-balance!)
  (history account-history set-account-history!))

(define-syntax while
  (syntax-rules ()
    ((_ condition body ...)
     (let loop () (when condition body ... (loop))))))

(define-syntax swap!
  (lambda (stx)
    (syntax-case stx ()
      ((_ a b)
       (and (identifier? #'a) (identifier? #'b))
       #'(let ((tmp a)) (set! a b) (set! b tmp))))))

(define-inlinable (clamp x low high)
  (max low (min x high)))

(define table-of-constants
  `((string . "a string constant")
    (wide . "\u03bb\u263a")
    (char . #\x)
    (vector . #(1 2.5 "three" (four)))
    (bytevector . ,#vu8(1 2 3 255))
    (bignum . 123456789012345678901234567890)
    (rational . 22/7)
    (flonum . 6.02e23)
    (symbols . (alpha beta gamma))
    (keyword . #:key)
    (nested . ((1 . 2) #(#(3)) ("x" . #\y)))))

(define (make-counter start)
  (let ((n start))
    (lambda* (#:optional (step 1))
      (set! n (+ n step))
      n)))

(define (transfer! from to amount)
  (let ((amount (clamp amount 0 (account-balance from))))
    (set-account-balance! from (- (account-balance from) amount))
    (set-account-balance! to (+ (account-balance to) amount))
    (set-account-history! from (cons (- amount) (account-history from)))
    (set-account-history! to (cons amount (account-history to)))
    amount))

(define (classify x)
  (match x
    ((? integer?) 'integer)
    ((? string?) 'string)
    (#(a b ...) (list 'vector (length b)))
    ((a . b) 'pair)
    (_ 'other)))

(define (run-all n)
  (let ((a (make-account "a" 1000 '()))
        (b (make-account "b" 0 '()))
        (counter (make-counter 10))
        (x 1)
        (y 2)
        (i 0))
    (while (< i n)
      (transfer! (if (even? i) a b) (if (even? i) b a) (modulo (* i 37) 101))
      (counter 3)
      (swap! x y)
      (set! i (+ i 1)))
    (list (account-balance a) (account-balance b)
          (length (account-history a)) (fold + 0 (account-history b))
          (counter) x y
          (map classify (list 1 "s" #(1 2 3) '(1 . 2) 'sym))
          (bytevector-u8-ref (assq-ref table-of-constants 'bytevector) 3))))

;;;; Weak-key, weak-value and doubly weak hash tables, weak vectors and
;;;; object properties across collections. Guile marks its weak tables
;;;; with mark procedures of its own (GC_new_kind, GC_new_proc,
;;;; GC_mark_and_push) and clears entries through disappearing links.
;;;; Entries of live objects must all stay; of the dead ones at least 90%
;;;; must go (a conservative collector may keep a few). A weak-key table
;;;; is no ephemeron table: a value that references its key keeps the
;;;; entry, always.

(use-modules (srfi srfi-1)
             (ice-9 weak-vector))

(define n (pick 20000 200000))

(define (table-count table)
  (hash-fold (lambda (key value count) (+ count 1)) 0 table))

(define (make-key i) (list 'key i))
(define (make-value i) (vector 'value i (number->string i)))
(define (value-ok? v i) (and (vector? v) (eqv? (vector-ref v 1) i)))

;; Weak keys: one key in four kept.
(define weak-keys (make-weak-key-hash-table))
(define kept-keys (make-vector (quotient n 4) #f))
(do ((i 0 (+ i 1))) ((= i n))
  (let ((key (make-key i)))
    (hashq-set! weak-keys key (make-value i))
    (when (= 0 (modulo i 4))
      (vector-set! kept-keys (quotient i 4) key))))
(full-gc)
(let ((count (table-count weak-keys))
      (live (quotient n 4)))
  (note "weak keys: ~a entries left, ~a live~%" count live)
  (report "weak keys: all live entries present"
          (every (lambda (j)
                   (let ((key (vector-ref kept-keys j)))
                     (value-ok? (hashq-ref weak-keys key) (* 4 j))))
                 (iota live)))
  (report "weak keys: at least 90% of dead entries gone"
          (at-least-90% (- n count) (- n live))))

;; Weak values: keys are fixnums, one value in four kept.
(define weak-values (make-weak-value-hash-table))
(define kept-values (make-vector (quotient n 4) #f))
(do ((i 0 (+ i 1))) ((= i n))
  (let ((value (make-value i)))
    (hashv-set! weak-values i value)
    (when (= 0 (modulo i 4))
      (vector-set! kept-values (quotient i 4) value))))
(full-gc)
(let ((count (table-count weak-values))
      (live (quotient n 4)))
  (note "weak values: ~a entries left, ~a live~%" count live)
  (report "weak values: all live entries present"
          (every (lambda (j) (eq? (hashv-ref weak-values (* 4 j)) (vector-ref kept-values j)))
                 (iota live)))
  (report "weak values: entries present are right"
          (hash-fold (lambda (key value ok) (and ok (value-ok? value key))) #t weak-values))
  (report "weak values: at least 90% of dead entries gone"
          (at-least-90% (- n count) (- n live))))

;; Doubly weak: the entry goes when either side dies.
(define doubly (make-doubly-weak-hash-table))
(define both-kept '())
(do ((i 0 (+ i 1))) ((= i n))
  (let ((key (make-key i)) (value (make-value i)))
    (hashq-set! doubly key value)
    (case (modulo i 4)
      ((0) (set! both-kept (cons (cons key value) both-kept)))
      ((1) (set! both-kept (cons (cons key #f) both-kept)))
      ((2) (set! both-kept (cons (cons #f value) both-kept))))))
(full-gc)
(let ((count (table-count doubly))
      (live (quotient (+ n 3) 4)))
  (note "doubly weak: ~a entries left, ~a with both sides live~%" count live)
  (report "doubly weak: entries with both sides live present"
          (every (lambda (kv)
                   (or (not (car kv)) (not (cdr kv))
                       (eq? (hashq-ref doubly (car kv)) (cdr kv))))
                 both-kept))
  (report "doubly weak: at least 90% of entries with a dead side gone"
          (at-least-90% (- n count) (- n live))))
(set! both-kept #f)

;; Values that reference their keys keep them: no ephemerons.
(define cyclic (make-weak-key-hash-table))
(do ((i 0 (+ i 1))) ((= i 1000))
  (let ((key (make-key i)))
    (hashq-set! cyclic key (cons key i))))
(full-gc)
(report "weak keys: values referencing their keys keep them"
        (= 1000 (table-count cyclic)))

;; Immediate keys never die.
(define immediates (make-weak-key-hash-table))
(do ((i 0 (+ i 1))) ((= i 1000))
  (hashv-set! immediates i (make-value i))
  (hashq-set! immediates (integer->char (+ 1000 i)) i))
(full-gc)
(report "weak keys: fixnum and character keys stay" (= 2000 (table-count immediates)))

;; Weak vectors: every other element kept; immediates stay.
(define wv-size (pick 20000 200000))
(define wv (make-weak-vector wv-size #f))
(define wv-kept (make-vector (quotient wv-size 2) #f))
(do ((i 0 (+ i 1))) ((= i wv-size))
  (let ((obj (case (modulo i 3)
               ((0) (make-value i))
               ((1) (make-string 20 #\w))
               (else (make-key i)))))
    (weak-vector-set! wv i obj)
    (when (even? i)
      (vector-set! wv-kept (quotient i 2) obj))))
(define kept-symbol 'weak-vector-symbol)
(define small-wv (weak-vector 1 #\c kept-symbol (make-value 5)))
(full-gc)
(let ((alive (count (lambda (i) (weak-vector-ref wv i)) (iota wv-size))))
  (note "weak vector: ~a of ~a elements alive, ~a kept~%" alive wv-size (quotient wv-size 2))
  (report "weak vector: all kept elements present"
          (every (lambda (j) (eq? (weak-vector-ref wv (* 2 j)) (vector-ref wv-kept j)))
                 (iota (quotient wv-size 2))))
  (report "weak vector: at least 90% of dropped elements cleared"
          (at-least-90% (- wv-size alive) (- wv-size (quotient wv-size 2)))))
(report "weak vector: immediates and a referenced symbol stay"
        (and (eqv? (weak-vector-ref small-wv 0) 1)
             (eqv? (weak-vector-ref small-wv 1) #\c)
             (eq? (weak-vector-ref small-wv 2) kept-symbol)))

;; Object properties: weak-key tables behind a procedure.
(define colour (make-object-property))
(define painted (list-tabulate 1000 (lambda (i) (make-key i))))
(for-each (lambda (obj i) (set! (colour obj) i)) painted (iota 1000))
(do ((i 0 (+ i 1))) ((= i (pick 20000 200000)))
  (set! (colour (make-key i)) 'dropped))
(full-gc)
(report "object properties of live objects kept"
        (every (lambda (obj i) (eqv? (colour obj) i)) painted (iota 1000)))

;; Tables that grow and shrink through many collections, live keys
;; replaced round after round.
(define churned (make-weak-key-hash-table))
(define window '())
(do ((round 0 (+ round 1))) ((= round (pick 20 100)))
  (set! window (list-tabulate 500 (lambda (i) (make-key (+ (* round 500) i)))))
  (for-each (lambda (key) (hashq-set! churned key (cadr key))) window)
  (do ((i 0 (+ i 1))) ((= i 2000))
    (hashq-set! churned (make-key i) i))
  (gc))
(full-gc)
(let ((count (table-count churned)))
  (note "churned weak table: ~a entries, 500 live~%" count)
  (report "churned table: the last live keys all present"
          (every (lambda (key) (eqv? (hashq-ref churned key) (cadr key))) window))
  (report "churned table: mostly dead entries gone"
          (<= count (+ 500 (quotient (* (pick 20 100) 2500) 10)))))

;;;; equal?, eqv? and eq? hash tables with many entries: insertions that
;;;; grow them, lookups, deletions, re-insertions, collections in between.
;;;; hashq and hashv hash heap objects by address, so nothing here prints
;;;; an order of traversal: only counts, sums and sorted keys.

(use-modules (srfi srfi-1)
             ((srfi srfi-69) #:prefix srfi69:))

(define n (pick 60000 600000))

(define (equal-key i)
  (case (modulo i 4)
    ((0) (string-append "key-" (number->string i)))
    ((1) (list i (* 2 i) "two"))
    ((2) (vector i (number->string i 16)))
    (else (cons (exact->inexact (/ i 8)) (integer->char (+ 65 (modulo i 26)))))))

(define (table-sum table)
  (hash-fold (lambda (key value acc) (+ acc value)) 0 table))

(define (table-count table)
  (hash-fold (lambda (key value acc) (+ acc 1)) 0 table))

;; equal?: the keys are made again for every lookup.
(define equal-table (make-hash-table))
(do ((i 0 (+ i 1))) ((= i n))
  (hash-set! equal-table (equal-key i) i))
(full-gc)
(format #t "equal: ~a entries, sum ~a~%" (hash-count (const #t) equal-table) (table-sum equal-table))
(report "equal: every key found after gc"
        (every (lambda (i) (eqv? i (hash-ref equal-table (equal-key i)))) (iota n)))
(report "equal: absent keys not found"
        (every (lambda (i) (not (hash-ref equal-table (equal-key (+ n i))))) (iota 1000)))
(do ((i 0 (+ i 3))) ((>= i n))
  (hash-remove! equal-table (equal-key i)))
(full-gc)
(format #t "equal: after removing every third, ~a entries, sum ~a~%"
        (table-count equal-table) (table-sum equal-table))
(report "equal: removed ones gone, others there"
        (every (lambda (i)
                 (if (= 0 (modulo i 3))
                     (not (hash-ref equal-table (equal-key i)))
                     (eqv? i (hash-ref equal-table (equal-key i)))))
               (iota n)))
(do ((i 0 (+ i 3))) ((>= i n))
  (hash-set! equal-table (equal-key i) (- i)))
(format #t "equal: re-inserted, ~a entries, sum ~a~%"
        (table-count equal-table) (table-sum equal-table))

;; eqv?: fixnums, bignums, flonums and characters.
(define (eqv-key i)
  (case (modulo i 4)
    ((0) i)
    ((1) (+ (expt 2 70) i))
    ((2) (exact->inexact (/ i 4)))
    (else (integer->char (+ #x10000 i)))))
(define eqv-table (make-hash-table 16))
(do ((i 0 (+ i 1))) ((= i n))
  (hashv-set! eqv-table (eqv-key i) (* 2 i)))
(full-gc)
(report "eqv: every key found after gc"
        (every (lambda (i) (eqv? (* 2 i) (hashv-ref eqv-table (eqv-key i)))) (iota n)))
(do ((i 1 (+ i 2))) ((>= i n))
  (hashv-remove! eqv-table (eqv-key i)))
(format #t "eqv: ~a entries after removing the odd ones, sum ~a~%"
        (table-count eqv-table) (table-sum eqv-table))
(let ((keys (hash-fold (lambda (key value acc) (if (integer? key) (cons key acc) acc))
                       '() eqv-table)))
  (format #t "eqv: ~a integer keys, smallest ~a, largest ~a~%"
          (length keys) (apply min keys) (apply max keys)))

;; eq?: symbols and objects (address-hashed), the objects kept in a list.
(define objects (list-tabulate n (lambda (i) (make-vector 2 i))))
(define eq-table (make-hash-table))
(for-each (lambda (obj) (hashq-set! eq-table obj (vector-ref obj 0))) objects)
(do ((i 0 (+ i 1))) ((= i 5000))
  (hashq-set! eq-table (string->symbol (string-append "s" (number->string i))) i))
(full-gc)
(report "eq: every object found after gc"
        (every (lambda (obj) (eqv? (vector-ref obj 0) (hashq-ref eq-table obj))) objects))
(report "eq: every symbol found after gc"
        (every (lambda (i) (eqv? i (hashq-ref eq-table (string->symbol (string-append "s" (number->string i))))))
               (iota 5000)))
(report "eq: a copy is not found" (not (hashq-ref eq-table (vector-copy (car objects)))))
(for-each (lambda (obj) (when (odd? (vector-ref obj 0)) (hashq-remove! eq-table obj))) objects)
(full-gc)
(format #t "eq: ~a entries after removals, sum ~a~%" (table-count eq-table) (table-sum eq-table))

;; Handles, hash-map->list with sorted results, clearing.
(define handles (make-hash-table))
(do ((i 0 (+ i 1))) ((= i 1000))
  (hash-create-handle! handles (number->string i) 0))
(do ((i 0 (+ i 1))) ((= i 10000))
  (let ((handle (hash-get-handle handles (number->string (modulo (* i 7) 1000)))))
    (set-cdr! handle (+ 1 (cdr handle)))))
(let ((pairs (sort (hash-map->list cons handles) (lambda (a b) (string<? (car a) (car b))))))
  (format #t "handles: ~a entries, first ~s, last ~s, total ~a~%"
          (length pairs) (car pairs) (last pairs) (fold + 0 (map cdr pairs))))
(hash-clear! handles)
(report "hash-clear!" (= 0 (hash-count (const #t) handles)))

;; SRFI-69 tables, with their own hash and equivalence procedures.
(define srfi-table (srfi69:make-hash-table string=? srfi69:string-hash))
(do ((i 0 (+ i 1))) ((= i (quotient n 2)))
  (srfi69:hash-table-set! srfi-table (number->string i 7) i))
(do ((i 0 (+ i 1))) ((= i (quotient n 2)))
  (srfi69:hash-table-update!/default srfi-table (number->string i 7) (lambda (v) (* v 3)) 0))
(full-gc)
(format #t "srfi-69: ~a entries, sum ~a~%"
        (srfi69:hash-table-size srfi-table)
        (srfi69:hash-table-fold srfi-table (lambda (k v acc) (+ acc v)) 0))
(report "srfi-69: lookups after gc"
        (every (lambda (i) (= (* 3 i) (srfi69:hash-table-ref/default srfi-table (number->string i 7) #f)))
               (iota (quotient n 2))))

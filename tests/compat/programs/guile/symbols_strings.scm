;;;; Strings and symbols across collections. Guile's symbol table is a weak
;;;; set: an interned symbol that nothing references is collected, and
;;;; string->symbol makes a new one later. Symbols that are kept must stay
;;;; interned and unique; of the dropped ones (watched through a weak
;;;; vector) at least 90% must go, and any that a conservative collector
;;;; kept must still be the symbol that string->symbol returns.

(use-modules (ice-9 weak-vector)
             (rnrs bytevectors)
             (srfi srfi-1))

(define n (pick 20000 400000))

(define (name kind i)
  (string-append kind "-" (number->string i) "-" (number->string (* i 7919) 36)))

(define (count-true vec ref)
  (let loop ((i 0) (count 0))
    (if (= i (vector-length vec))
        count
        (loop (+ i 1) (if (ref vec i) (+ count 1) count)))))

;; Interned symbols: one in ten kept, the others only watched.
(define kept (make-vector (quotient n 10) #f))
(define watch (make-weak-vector n #f))

(let loop ((i 0))
  (when (< i n)
    (let ((sym (string->symbol (name "sym" i))))
      (if (= 0 (modulo i 10))
          (vector-set! kept (quotient i 10) sym)
          (weak-vector-set! watch i sym)))
    (loop (+ i 1))))

(define (kept-ok?)
  (let loop ((i 0))
    (or (= i (vector-length kept))
        (let ((sym (vector-ref kept i)))
          (and (symbol-interned? sym)
               (eq? sym (string->symbol (name "sym" (* 10 i))))
               (string=? (symbol->string sym) (name "sym" (* 10 i)))
               (loop (+ i 1)))))))

(report "kept symbols interned and unique before gc" (kept-ok?))
(full-gc)
(report "kept symbols interned and unique after gc" (kept-ok?))

(define (dropped-counts)
  ;; (alive . still-interned-and-eq) over the watched symbols.
  (let loop ((i 0) (alive 0) (same 0))
    (if (= i n)
        (cons alive same)
        (let ((sym (weak-vector-ref watch i)))
          (if sym
              (loop (+ i 1) (+ alive 1)
                    (if (and (symbol-interned? sym)
                             (eq? sym (string->symbol (name "sym" i))))
                        (+ same 1)
                        same))
              (loop (+ i 1) alive same))))))

(let* ((counts (dropped-counts))
       (dropped (- n (vector-length kept))))
  (note "symbols: ~a of ~a dropped symbols still alive~%" (car counts) dropped)
  (report "at least 90% of dropped symbols collected"
          (at-least-90% (- dropped (car counts)) dropped))
  (report "dropped symbols still alive are the interned ones"
          (= (car counts) (cdr counts))))

;; Interning the dropped names again gives working symbols.
(let loop ((i 1) (ok #t))
  (if (>= i n)
      (report "dropped names interned again" ok)
      (let ((sym (string->symbol (name "sym" i))))
        (loop (+ i 10)
              (and ok (symbol-interned? sym)
                   (string=? (symbol->string sym) (name "sym" i)))))))

;; Uninterned symbols and gensyms.
(define uninterned
  (list-tabulate 1000 (lambda (i) (make-symbol (name "sym" (* 10 i))))))
(full-gc)
(report "make-symbol: not interned, not eq to the interned one"
        (every (lambda (sym i)
                 (and (not (symbol-interned? sym))
                      (not (eq? sym (vector-ref kept i)))
                      (string=? (symbol->string sym) (symbol->string (vector-ref kept i)))))
               uninterned (iota 1000)))
(define gensyms (list-tabulate 1000 (lambda (i) (gensym "g"))))
(report "gensyms distinct" (= 1000 (length (delete-duplicates gensyms eq?))))

;; Keywords live in a weak table of their own.
(define keywords
  (list-tabulate 2000 (lambda (i) (symbol->keyword (string->symbol (name "kw" i))))))
(do ((i 0 (+ i 1))) ((= i (pick 20000 200000)))
  (symbol->keyword (string->symbol (name "kw-dropped" i))))
(full-gc)
(report "keywords unique and round-trip after gc"
        (every (lambda (kw i)
                 (and (eq? kw (symbol->keyword (string->symbol (name "kw" i))))
                      (eq? (keyword->symbol kw) (string->symbol (name "kw" i)))))
               keywords (iota 2000)))

;; Strings: narrow and wide, built in many ways, checked across collections.
(define (make-text i)
  (case (modulo i 5)
    ((0) (string-append "narrow " (number->string i) " " (make-string (modulo i 50) #\x)))
    ((1) (string-upcase (name "mixed" i)))
    ((2) (list->string (map (lambda (k) (integer->char (+ #x3b1 (modulo (+ i k) 24))))
                            (iota (+ 5 (modulo i 20))))))
    ((3) (with-output-to-string
           (lambda () (display "port ") (write (list i (* i i) "q")) (display #\x263a))))
    (else (string-join (map number->string (iota (modulo i 12) i)) ","))))

(define (text-sum text)
  (string-fold (lambda (c acc) (modulo (+ (* acc 31) (char->integer c)) 1000000007))
               (string-length text) text))

(define texts (make-vector (pick 15000 300000) #f))
(do ((i 0 (+ i 1))) ((= i (vector-length texts)))
  (vector-set! texts i (make-text i))
  ;; garbage in between: temporary strings and substrings
  (string-length (string-append (make-text (+ i 1)) (substring (make-text i) 0))))

(define (texts-sum)
  (let loop ((i 0) (acc 0))
    (if (= i (vector-length texts))
        acc
        (loop (+ i 1) (modulo (+ (* acc 7) (text-sum (vector-ref texts i))) 1000000007)))))

(define before (texts-sum))
(format #t "strings: ~a made, checksum ~a~%" (vector-length texts) before)
(full-gc)
(report "strings unchanged after gc" (= before (texts-sum)))
(report "strings rebuilt equal"
        (let loop ((i 0))
          (or (= i (vector-length texts))
              (and (string=? (vector-ref texts i) (make-text i)) (loop (+ i 1))))))

;; Shared substrings share the storage (a write shows through both), plain
;; substrings are copied on write; UTF-8 round trips.
(define big (make-string (pick 200000 2000000) #\a))
(string-set! big 100 #\x263a)
(define shared (substring/shared big 50 150))
(define copied (substring big 50 150))
(string-set! shared 0 #\b)
(string-set! copied 1 #\c)
(full-gc)
(report "substring/shared writes through, substring copies"
        (and (char=? (string-ref big 50) #\b)
             (char=? (string-ref shared 0) #\b)
             (char=? (string-ref copied 0) #\a)
             (char=? (string-ref big 51) #\a)
             (char=? (string-ref shared 50) #\x263a)
             (char=? (string-ref copied 50) #\x263a)))
(report "utf8 round trip of a large wide string"
        (string=? big (utf8->string (string->utf8 big))))
(format #t "utf8 length ~a, string length ~a~%"
        (bytevector-length (string->utf8 big)) (string-length big))

;; Symbols from many strings, sorted: the order of names, not of addresses.
(define syms (map (lambda (i) (string->symbol (make-text i))) (iota 3000)))
(full-gc)
(let ((sorted (sort (map symbol->string (delete-duplicates syms eq?)) string<?)))
  (format #t "distinct symbols ~a, first ~s, last ~s~%"
          (length sorted) (car sorted) (last sorted)))
(report "symbol-append" (eq? (symbol-append 'foo 'bar) 'foobar))

;;;; Large vectors, bytevectors, uniform vectors and strings (megabytes
;;;; each): filled, checked across collections, copied, and many of them
;;;; made and dropped so that large blocks are reclaimed and reused. The
;;;; checks compare with a second copy built the same way (equal? and
;;;; bytevector=? run in C, so the evaluator's loops stay short).

(use-modules (rnrs bytevectors)
             (srfi srfi-1)
             (srfi srfi-4))

(define kib 1024)
(define mib (* 1024 1024))

;; A vector of half a million slots holding fixnums, pairs and strings.
(define vector-size (pick 500000 4000000))
(define (make-big-vector)
  (let ((vec (make-vector vector-size #f)))
    (do ((i 0 (+ i 1))) ((= i vector-size) vec)
      (vector-set! vec i
                   (case (modulo i 3)
                     ((0) i)
                     ((1) (cons i i))
                     (else (number->string i)))))))
(define big-vector (make-big-vector))
(full-gc)
(define expected-vector (make-big-vector))
(full-gc)
(report (format #f "vector of ~a slots intact after gc" vector-size)
        (equal? big-vector expected-vector))
(define copied (vector-copy big-vector))
(vector-fill! big-vector 0)
(set! expected-vector #f)
(full-gc)
(report "vector copy intact after the original is cleared"
        (equal? copied (make-big-vector)))
(set! copied #f)
(report "cleared vector all zero" (equal? big-vector (make-vector vector-size 0)))
(set! big-vector #f)

;; Bytevectors of 16 MiB made of 64 KiB chunks, each of a pattern of
;; words and a chunk number.
(define chunk-size (* 64 kib))
(define pattern (make-bytevector chunk-size 0))
(do ((i 0 (+ i 1))) ((= i (quotient chunk-size 8)))
  (bytevector-u64-native-set! pattern (* 8 i) (logand (* i 2654435761) #xffffffffffffffff)))
(define bv-size (pick (* 16 mib) (* 128 mib)))
(define (make-big-bytevector)
  (let ((bv (make-bytevector bv-size)))
    (do ((c 0 (+ c 1))) ((= c (quotient bv-size chunk-size)) bv)
      (bytevector-copy! pattern 0 bv (* c chunk-size) chunk-size)
      (bytevector-u32-native-set! bv (* c chunk-size) c))))
(define (sample-sum bv)
  (let loop ((offset 0) (acc 0))
    (if (>= offset (bytevector-length bv))
        acc
        (loop (+ offset 4088) (logand (+ (* 3 acc) (bytevector-u64-native-ref bv offset))
                                      #xffffffffffff)))))
(define bv (make-big-bytevector))
(define sum-before (sample-sum bv))
(format #t "bytevector of ~a MiB: sampled sum ~a~%" (quotient bv-size mib) sum-before)
(full-gc)
(report "bytevector unchanged after gc"
        (and (= sum-before (sample-sum bv)) (bytevector=? bv (make-big-bytevector))))
(define bv2 (bytevector-copy bv))
(bytevector-fill! bv 255)
(full-gc)
(report "bytevector copy unchanged after the original is filled"
        (bytevector=? bv2 (make-big-bytevector)))
(report "filled bytevector" (bytevector=? bv (make-bytevector bv-size 255)))
(bytevector-copy! bv2 0 bv (quotient bv-size 2) (quotient bv-size 2))
(report "bytevector-copy! of half"
        (and (= 255 (bytevector-u8-ref bv (- (quotient bv-size 2) 1)))
             (= (bytevector-u32-native-ref bv (quotient bv-size 2)) 0)
             (= (bytevector-u64-native-ref bv (+ 8 (quotient bv-size 2))) 2654435761)
             (= (bytevector-u32-native-ref bv (+ chunk-size (quotient bv-size 2))) 1)))
(set! bv #f)
(set! bv2 #f)

;; Many 1 MiB bytevectors made and dropped; one in eight kept and checked.
(define rounds (pick 300 3000))
(define kept
  (let loop ((i 0) (kept '()))
    (if (= i rounds)
        kept
        (let ((b (make-bytevector mib (modulo i 251))))
          (bytevector-u32-native-set! b (- mib 4) i)
          (loop (+ i 1) (if (= 0 (modulo i 8)) (cons (cons i b) kept) kept))))))
(full-gc)
(report (format #f "~a of ~a 1 MiB bytevectors kept intact" (length kept) rounds)
        (every (lambda (entry)
                 (let ((i (car entry)) (b (cdr entry)))
                   (and (= (bytevector-length b) mib)
                        (= (bytevector-u8-ref b 0) (modulo i 251))
                        (= (bytevector-u8-ref b (quotient mib 2)) (modulo i 251))
                        (= (bytevector-u32-native-ref b (- mib 4)) i))))
               kept))
(set! kept #f)

;; Sizes around page and block boundaries, from a few bytes to 256 KiB.
(define odd-sizes
  (map (lambda (k) (max 1 (+ (modulo (* k 13) 17) (* 4096 (modulo (* k 37) 64)) -8)))
       (iota 400 1)))
(define odd (map (lambda (size) (make-bytevector size (modulo size 256))) odd-sizes))
(churn)
(define odd-2 (map (lambda (size) (make-bytevector size (modulo size 256))) odd-sizes))
(full-gc)
(report (format #f "bytevectors of ~a odd sizes intact" (length odd-sizes))
        (and (every bytevector=? odd odd-2)
             (every (lambda (b size)
                      (and (= (bytevector-length b) size)
                           (= (bytevector-u8-ref b (- size 1)) (modulo size 256))))
                    odd odd-sizes)))
(set! odd #f)
(set! odd-2 #f)

;; Uniform vectors: f64 and u32.
(define f64-size (pick 200000 2000000))
(define f64 (make-f64vector f64-size 0.0))
(do ((i 0 (+ i 1))) ((= i f64-size))
  (f64vector-set! f64 i (/ i 4.0)))
(full-gc)
(format #t "f64vector of ~a: sum ~a~%" f64-size
        (let loop ((i 0) (acc 0.0))
          (if (= i f64-size) acc (loop (+ i 1) (+ acc (f64vector-ref f64 i))))))
(define u32 (list->u32vector (iota (pick 1000000 8000000))))
(full-gc)
(report (format #f "u32vector of ~a" (u32vector-length u32))
        (equal? u32 (list->u32vector (iota (u32vector-length u32)))))

;; Strings of megabytes, narrow and wide.
(define narrow (make-string (* 4 mib) #\n))
(define wide (make-string (* 2 mib) #\x3bb))
(string-set! narrow (- (* 4 mib) 1) #\z)
(full-gc)
(report "large strings intact"
        (and (char=? (string-ref narrow 0) #\n)
             (char=? (string-ref narrow (- (* 4 mib) 1)) #\z)
             (char=? (string-ref wide (- (* 2 mib) 1)) #\x3bb)
             (= (string-length (string-append narrow wide)) (* 6 mib))
             (string=? (substring narrow 1000 2000) (make-string 1000 #\n))))

;; Vectors of vectors: a two-level table of a million cells.
(define rows (pick 1000 4000))
(define grid (make-vector rows #f))
(do ((r 0 (+ r 1))) ((= r rows))
  (vector-set! grid r (make-vector 1000 r)))
(full-gc)
(format #t "grid of ~a rows: sum ~a~%" rows
        (let loop ((r 0) (acc 0))
          (if (= r rows)
              acc
              (loop (+ r 1) (+ acc (vector-ref (vector-ref grid r) (modulo r 1000)))))))

;;;; The binary-trees benchmark, run by the evaluator (GUILE_AUTO_COMPILE=0,
;;;; so no compilation happens: more allocation per node than compiled
;;;; code). Trees of pairs, a stretch tree, many short-lived trees per
;;;; depth and one long-lived tree that spans every collection.

(define max-depth (pick 15 18))
(define min-depth 4)

(define (make-tree depth)
  (if (= depth 0)
      (cons #f #f)
      (cons (make-tree (- depth 1)) (make-tree (- depth 1)))))

(define (check tree)
  (if (car tree)
      (+ 1 (check (car tree)) (check (cdr tree)))
      1))

(let ((stretch (+ max-depth 1)))
  (format #t "stretch tree of depth ~a\t check: ~a~%" stretch (check (make-tree stretch))))

(define long-lived (make-tree max-depth))

(do ((depth min-depth (+ depth 2)))
    ((> depth max-depth))
  (let ((iterations (ash 1 (+ (- max-depth depth) min-depth))))
    (let loop ((i 0) (sum 0))
      (if (< i iterations)
          (loop (+ i 1) (+ sum (check (make-tree depth))))
          (format #t "~a\t trees of depth ~a\t check: ~a~%" iterations depth sum)))))

(format #t "long lived tree of depth ~a\t check: ~a~%" max-depth (check long-lived))

;;;; Loaded (guile -l common.scm -s SCRIPT SCALE) before every guile_*
;;;; script of run_workload.py: the scale, fixed report lines, and the
;;;; collections that the checks on weak references rely on.
;;;;
;;;; Standard output carries only facts that do not depend on the
;;;; collector's timing or on addresses ("...: ok", sums, counts of live
;;;; objects); the real counts of what a conservative collector may keep
;;;; or free go to standard error, which run_workload.py does not compare.

(use-modules (ice-9 format))

(define *scale*
  (let ((args (command-line)))
    (if (and (pair? args) (pair? (cdr args)))
        (string->symbol (cadr args))
        'test)))

(define (pick test bench)
  (if (eq? *scale* 'bench) bench test))

(define (report label ok)
  (format #t "~a: ~a~%" label (if ok "ok" "FAIL"))
  (force-output))

(define (note fmt . args)
  ;; Counts that may differ between collectors: standard error only.
  (apply format (current-error-port) fmt args)
  (force-output (current-error-port)))

(define (at-least-90% part whole)
  (>= (* 10 part) (* 9 whole)))

(define (churn)
  ;; Fresh allocation between collections, so that words left on the
  ;; stacks from building the objects under test are overwritten.
  (let loop ((i 0) (acc '()))
    (if (< i 2000)
        (loop (+ i 1) (if (= 0 (modulo i 100)) '() (cons (make-vector 8 i) acc)))
        (length acc))))

(define (full-gc)
  (churn)
  (gc)
  (churn)
  (gc))

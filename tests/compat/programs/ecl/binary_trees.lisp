;;;; The binary-trees benchmark (Computer Language Benchmarks Game) on ECL's
;;;; bytecode interpreter: short-lived trees of every depth next to one
;;;; long-lived tree, the classic test of a collector's allocation and
;;;; sweep rate. The checks are node counts, the same on any collector.
;;;; Loaded by run_workload.py, which defines *scale* (:test or :bench).

(defparameter *max-depth*
  (ecase *scale*
    (:test 15)
    (:bench 17)))

(defun make-tree (depth)
  (if (zerop depth)
      (cons nil nil)
      (cons (make-tree (1- depth)) (make-tree (1- depth)))))

(defun check-tree (tree)
  (if (car tree)
      (+ 1 (check-tree (car tree)) (check-tree (cdr tree)))
      1))

(let* ((max-depth (max 6 *max-depth*))
       (stretch-depth (1+ max-depth)))
  (format t "stretch tree of depth ~D~C check: ~D~%"
          stretch-depth #\Tab (check-tree (make-tree stretch-depth)))
  (let ((long-lived (make-tree max-depth)))
    (loop for depth from 4 to max-depth by 2
          do (let ((iterations (ash 1 (+ (- max-depth depth) 4)))
                   (check 0))
               (dotimes (i iterations)
                 (incf check (check-tree (make-tree depth))))
               (format t "~D~C trees of depth ~D~C check: ~D~%"
                       iterations #\Tab depth #\Tab check)))
    (format t "long lived tree of depth ~D~C check: ~D~%"
            max-depth #\Tab (check-tree long-lived))))

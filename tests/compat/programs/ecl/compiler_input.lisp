;;;; Compiled to native code by compiler.lisp (compile-file runs gcc, and
;;;; load dlopens the result). Allocation-heavy on purpose: the compiled
;;;; code's constants, closures, structures and CLOS instances all live in
;;;; the collected heap.

(defpackage :compiled
  (:use :cl)
  (:export #:tree-check #:word-counts #:make-counter #:shape-area #:circle #:rect
           #:total-area #:primes-below #:with-doubled #:string-reverse-words))

(in-package :compiled)

(defun make-tree (depth)
  (declare (fixnum depth))
  (if (zerop depth)
      (cons nil nil)
      (cons (make-tree (1- depth)) (make-tree (1- depth)))))

(defun check-tree (tree)
  (if (car tree)
      (the fixnum (+ 1 (the fixnum (check-tree (car tree))) (the fixnum (check-tree (cdr tree)))))
      1))

(defun tree-check (depth iterations)
  (declare (fixnum depth iterations))
  (let ((total 0))
    (declare (fixnum total))
    (dotimes (i iterations total)
      (incf total (check-tree (make-tree depth))))))

(defun word-counts (words)
  (let ((table (make-hash-table :test 'equal)))
    (dolist (w words)
      (incf (gethash w table 0)))
    (sort (loop for k being the hash-keys of table using (hash-value v) collect (cons k v))
          (lambda (a b)
            (or (> (cdr a) (cdr b))
                (and (= (cdr a) (cdr b)) (string< (car a) (car b))))))))

(defun make-counter (start)
  (let ((n start))
    (lambda (&optional (step 1)) (incf n step))))

(defclass shape () ((name :initarg :name :reader shape-name)))
(defclass circle (shape) ((r :initarg :r :reader circle-r)))
(defclass rect (shape) ((w :initarg :w :reader rect-w) (h :initarg :h :reader rect-h)))

(defgeneric shape-area (shape))
(defmethod shape-area ((s circle)) (* 355/113 (circle-r s) (circle-r s)))
(defmethod shape-area ((s rect)) (* (rect-w s) (rect-h s)))

(defun total-area (n)
  (let ((shapes (loop for i from 1 to n
                      collect (if (evenp i)
                                  (make-instance 'circle :name (format nil "c~D" i) :r i)
                                  (make-instance 'rect :name (format nil "r~D" i) :w i :h (1+ i))))))
    (reduce #'+ shapes :key #'shape-area)))

(defstruct (sieve (:constructor make-sieve (size)))
  size
  (bits (make-array size :element-type 'bit :initial-element 1)))

(defun primes-below (n)
  (let ((s (make-sieve n)))
    (loop for i from 2 below n
          when (= 1 (sbit (sieve-bits s) i))
            do (loop for j from (* i i) below n by i do (setf (sbit (sieve-bits s) j) 0))
          and collect i)))

(defmacro with-doubled ((var value) &body body)
  `(let ((,var (* 2 ,value))) ,@body))

(defun string-reverse-words (string)
  (format nil "~{~A~^ ~}"
          (reverse (loop with start = 0
                         for pos = (position #\Space string :start start)
                         collect (subseq string start pos)
                         while pos
                         do (setf start (1+ pos))))))

;;;; ECL's native compiler on the collector: compile-file of
;;;; compiler_input.lisp (ECL writes C, runs gcc, links a shared object
;;;; against -lecl -lgc), load (dlopen) of the result, calls into it, and
;;;; COMPILE of a lambda at run time, which goes through gcc and dlopen
;;;; too. The compiler itself allocates heavily. Loaded by run_workload.py,
;;;; which defines *scale* (:test or :bench) and *work* (a private
;;;; directory for the compiler's output).

(defparameter *rounds*
  (ecase *scale*
    (:test 1)
    (:bench 4)))

(setf *compile-verbose* nil
      *compile-print* nil
      *load-verbose* nil)

(defparameter *source*
  (merge-pathnames "compiler_input.lisp" *load-truename*))

(defun compile-and-load (round)
  ;; Notes and style warnings go to *error-output*, which is not compared.
  (let* ((output (merge-pathnames (format nil "compiled-~D.fas" round) *work*))
         (fasl (let ((*error-output* (make-broadcast-stream)))
                 (compile-file *source* :output-file output))))
    (format t "round ~D: compiled ~A, native ~:[no~;yes~]~%"
            round (pathname-type fasl)
            (with-open-file (in fasl :element-type '(unsigned-byte 8))
              ;; An ELF shared object, not bytecodes.
              (let ((magic (make-array 4 :element-type '(unsigned-byte 8))))
                (read-sequence magic in)
                (equalp magic #(127 69 76 70)))))
    (load fasl)))

(dotimes (round *rounds*)
  (compile-and-load round)
  (ext:gc t))

(defun call (name &rest args)
  (apply (find-symbol name "COMPILED") args))

(format t "compiled functions: ~:[no~;yes~]~%"
        (every (lambda (name) (compiled-function-p (symbol-function (find-symbol name "COMPILED"))))
               '("TREE-CHECK" "WORD-COUNTS" "PRIMES-BELOW")))
(format t "tree-check: ~D~%" (call "TREE-CHECK" 12 (* 20 *rounds*)))
(format t "word-counts: ~S~%"
        (subseq (call "WORD-COUNTS" (loop for i below 20000 collect (format nil "w~D" (mod (* i i) 97)))) 0 6))
(let ((counter (call "MAKE-COUNTER" 10)))
  (dotimes (i 1000) (funcall counter 3))
  (format t "counter: ~D~%" (funcall counter 0)))
(format t "total-area: ~S~%" (call "TOTAL-AREA" 2000))
(let ((primes (call "PRIMES-BELOW" 200000)))
  (format t "primes below 200000: ~D, last ~D~%" (length primes) (car (last primes))))
(format t "macro: ~D~%" (eval (read-from-string "(compiled:with-doubled (x 21) (+ x 0))")))
(format t "reverse: ~A~%" (call "STRING-REVERSE-WORDS" "the quick brown fox jumps over the lazy dog"))

;;; COMPILE at run time: another trip through gcc and dlopen.
(let ((fn (let ((*error-output* (make-broadcast-stream)))
            (compile nil '(lambda (n)
                           (let ((acc nil))
                             (dotimes (i n) (push (make-string (mod i 7) :initial-element #\x) acc))
                             (reduce #'+ acc :key #'length)))))))
  (format t "compile: ~:[interpreted~;native~], result ~D~%"
          (compiled-function-p fn) (funcall fn 100000)))

(ext:gc t)
(format t "tree-check after collection: ~D~%" (call "TREE-CHECK" 10 10))
(format t "compiler: done~%")

;;;; Weak pointers and weak hash tables across full collections.
;;;;
;;;; ECL clears a weak pointer through Boehm's disappearing links
;;;; (GC_general_register_disappearing_link) and reads it under the
;;;; allocation lock (GC_call_with_alloc_lock). A conservative collector may
;;;; keep a few dead objects alive through stale words on a stack, so the
;;;; checks on garbage are "at least 90% cleared"; objects still referenced
;;;; must all survive, exactly. The targets are strings, vectors and
;;;; structures, never conses: ECL registers no link for a cons (its tagged
;;;; pointer passes ECL_IMMEDIATE), so a weak pointer to a cons never clears
;;;; on any collector. Counts go to *error-output* (not compared), fixed
;;;; lines to *standard-output*. Loaded by run_workload.py, which defines
;;;; *scale* (:test or :bench).

(defparameter *n*
  (ecase *scale*
    (:test 20000)
    (:bench 200000)))

(defstruct node id payload)

(defun make-target (i)
  (case (mod i 3)
    (0 (make-string 40 :initial-element (code-char (+ 97 (mod i 26)))))
    (1 (make-array 8 :initial-element i))
    (2 (make-node :id i :payload (make-string 16)))))

(defun target-id-ok (object i)
  (case (mod i 3)
    (0 (char= (char object 39) (code-char (+ 97 (mod i 26)))))
    (1 (eql (aref object 7) i))
    (2 (eql (node-id object) i))))

(defun churn ()
  ;; Fresh allocation between the collections, so that stale stack words
  ;; left from building the targets are overwritten.
  (dotimes (i 2000) (make-array 20)))

(defun full-gc ()
  (churn)
  (ext:gc t)
  (churn)
  (si:gc t))

(defun report (label ok)
  (format t "~A: ~:[FAIL~;ok~]~%" label ok))

(defun at-least-90% (part whole)
  (>= (* 10 part) (* 9 whole)))

;;; Weak pointers to garbage, built in a function whose frame is gone.
(defun make-dead-pointers (n)
  (let ((v (make-array n)))
    (dotimes (i n v)
      (setf (aref v i) (ext:make-weak-pointer (make-target i))))))

;;; Strong and weak references to the same objects.
(defun make-kept (n)
  (let ((strong (make-array n))
        (weak (make-array n)))
    (dotimes (i n)
      (let ((o (make-target i)))
        (setf (aref strong i) o
              (aref weak i) (ext:make-weak-pointer o))))
    (values strong weak)))

(defun count-cleared (pointers &key (start 0) (end (length pointers)))
  (loop for i from start below end
        count (null (ext:weak-pointer-value (aref pointers i)))))

(defun kept-intact-p (strong weak &key (start 0) (end (length strong)))
  (loop for i from start below end
        always (multiple-value-bind (value validp) (ext:weak-pointer-value (aref weak i))
                 (and validp
                      (eq value (aref strong i))
                      (target-id-ok value i)))))

(defun phase-pointers ()
  (multiple-value-bind (strong weak) (make-kept *n*)
    (let ((dead (make-dead-pointers *n*)))
      (report "weak pointers to live objects before collection"
              (kept-intact-p strong weak))
      (full-gc)
      (let ((cleared (count-cleared dead)))
        (format *error-output* "weak: ~D of ~D dead targets cleared~%" cleared *n*)
        (report "weak pointers to garbage cleared (at least 90%)" (at-least-90% cleared *n*))
        ;; A pointer that was not cleared must still reach its own target.
        (report "every dead weak pointer reads NIL or its intact target"
                (loop for p across dead
                      for i from 0
                      always (multiple-value-bind (value validp) (ext:weak-pointer-value p)
                               (if validp
                                   (target-id-ok value i)
                                   (null value))))))
      (report "weak pointers to live objects after collection" (kept-intact-p strong weak))
      ;; Drop the strong references to the second half: those targets die,
      ;; the first half stays.
      (let ((half (floor *n* 2)))
        (loop for i from half below *n* do (setf (aref strong i) nil))
        (full-gc)
        (full-gc)
        (let ((cleared (count-cleared weak :start half)))
          (format *error-output* "weak: ~D of ~D dropped targets cleared~%" cleared (- *n* half))
          (report "weak pointers to dropped objects cleared (at least 90%)"
                  (at-least-90% cleared (- *n* half))))
        (report "weak pointers to still-kept objects intact"
                (kept-intact-p strong weak :end half))))))

;;; Weak hash tables of each kind: entries whose weak parts are garbage go,
;;; the others stay with their values.
(defun fill-table (table n kept-keys kept-values)
  (dotimes (i n)
    (let ((key (format nil "key-~D" i))
          (value (make-node :id i)))
      (when (< i (floor n 4))
        (push key kept-keys)
        (push value kept-values))
      (setf (gethash key table) value)))
  (values kept-keys kept-values))

(defun phase-tables ()
  (dolist (weakness '(:key :value :key-and-value :key-or-value))
    (let ((table (make-hash-table :test 'eq :weakness weakness))
          (n (floor *n* 2)))
      (multiple-value-bind (keys values) (fill-table table n nil nil)
        (full-gc)
        (full-gc)
        (let ((count (hash-table-count table))
              (kept (length keys))
              (live 0))
          ;; Count entries reachable through the kept keys, with their
          ;; own values.
          (loop for key in keys
                for value in values
                when (eq (gethash key table) value) do (incf live))
          (format *error-output* "weak ~(~A~) table: ~D of ~D entries left, ~D kept~%"
                  weakness count n kept)
          (report (format nil "~(~A~) weak table kept its live entries" weakness)
                  (= live kept))
          ;; :key-or-value keeps an entry while either part lives; the
          ;; others lose every entry with a dead part.
          (report (format nil "~(~A~) weak table dropped its dead entries (at least 90%)" weakness)
                  (at-least-90% (- n count) (- n kept))))))))

;;; Many collections in a row with weak pointers being made and dropped all
;;; along: the link table grows and shrinks.
(defun phase-cycles ()
  (let ((survivors (make-array 100))
        (survivor-pointers (make-array 100)))
    (dotimes (i 100)
      (setf (aref survivors i) (make-target i)
            (aref survivor-pointers i) (ext:make-weak-pointer (aref survivors i))))
    (dotimes (cycle 10)
      (make-dead-pointers (floor *n* 4))
      (ext:gc t))
    (report "weak pointers survive ten collections with churn"
            (kept-intact-p survivors survivor-pointers))))

(phase-pointers)
(phase-tables)
(phase-cycles)
(format t "weak: done~%")

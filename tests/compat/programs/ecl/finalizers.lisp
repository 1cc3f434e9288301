;;;; Finalizers (ext:set-finalizer, on Boehm's GC_register_finalizer_no_order
;;;; with Java-style finalization): they run for garbage, never for live
;;;; objects nor for objects whose finalizer was removed, may resurrect
;;;; their object, and run for garbage made by threads that have exited.
;;;;
;;;; A conservative collector may keep a few dead objects alive, and a
;;;; collector may run finalizers later than the collection that found
;;;; them, so the checks collect and allocate up to eight times, until all
;;;; have run, and then ask for "at least 90% ran". Counts go to
;;;; *error-output* (not compared), fixed lines to *standard-output*.
;;;;
;;;; Finalizers run in whichever thread allocates, and a finalizer that
;;;; allocates can have others run inside it (Boehm invokes pending
;;;; finalizers from the allocator), so a plain INCF or PUSH in a finalizer
;;;; loses updates: they count and collect with MP:ATOMIC-INCF and
;;;; MP:ATOMIC-PUSH on special variables, and take no lock.
;;;;
;;;; No finalizer closes over its object: the collector's table of
;;;; finalizers is a root, so an object reachable from its own finalizer
;;;; (an interpreted closure over a variable bound to it) is never
;;;; finalized, on Boehm too. Each phase shares one finalizer function.
;;;;
;;;; Loaded by run_workload.py, which defines *scale* (:test or :bench).

(defparameter *n*
  (ecase *scale*
    (:test 50000)
    (:bench 400000)))

(defvar *garbage-ran* 0)
(defvar *kept-ran* 0)
(defvar *removed-ran* 0)
(defvar *thread-ran* 0)
(defvar *resurrected* nil)

(defun counting-finalizer (counter)
  (lambda (object)
    (declare (ignore object))
    (mp:atomic-incf (symbol-value counter))))

(defun ran (counter)
  (symbol-value counter))

(defun make-object (i)
  (if (evenp i)
      (make-array 6 :initial-element i)
      (make-string 24 :initial-element (code-char (+ 65 (mod i 26))))))

(defun make-finalized (n counter)
  (let ((finalizer (counting-finalizer counter)))
    (dotimes (i n)
      (ext:set-finalizer (make-object i) finalizer))))

(defun churn ()
  (dotimes (i 2000) (make-array 20)))

(defun collect-until (done-p)
  ;; Up to eight rounds of collection and allocation, stopping once DONE-P
  ;; says every finalizer has run; the checks then ask for 90%. A round
  ;; can leave some: finalizers that allocate make new garbage and have
  ;; others run inside them.
  (loop for round from 1 to 8
        until (funcall done-p)
        do (churn) (ext:gc t) (churn)
        finally (format *error-output* "finalizers: ~D rounds~%" round)))

(defun report (label ok)
  (format t "~A: ~:[FAIL~;ok~]~%" label ok))

(defun at-least-90% (part whole)
  (>= (* 10 part) (* 9 whole)))

(defun phase-garbage-and-kept ()
  (let* ((finalizer (counting-finalizer '*kept-ran*))
         (kept (loop for i below (floor *n* 10)
                     collect (let ((o (make-object i)))
                               (ext:set-finalizer o finalizer)
                               o))))
    (make-finalized *n* '*garbage-ran*)
    (collect-until (lambda () (>= (ran '*garbage-ran*) *n*)))
    (format *error-output* "finalizers: ~D of ~D ran for garbage~%" (ran '*garbage-ran*) *n*)
    (report "finalizers ran for garbage (at least 90%)" (at-least-90% (ran '*garbage-ran*) *n*))
    (report "finalizers ran at most once each" (<= (ran '*garbage-ran*) *n*))
    (report "no finalizer ran for a live object" (zerop (ran '*kept-ran*)))
    (report "live finalized objects intact"
            (loop for o in kept
                  for i from 0
                  always (if (evenp i)
                             (eql (aref o 5) i)
                             (char= (char o 23) (code-char (+ 65 (mod i 26)))))))
    (report "ext:get-finalizer returns the finalizer of a live object"
            (functionp (ext:get-finalizer (first kept))))))

(defun phase-removed ()
  (let ((finalizer (counting-finalizer '*removed-ran*)))
    (dotimes (i (floor *n* 2))
      (let ((o (make-object i)))
        (ext:set-finalizer o finalizer)
        (ext:set-finalizer o nil))))
  (churn) (ext:gc t) (churn) (ext:gc t) (churn)
  (report "no removed finalizer ran" (zerop (ran '*removed-ran*))))

(defun resurrect (object)
  (mp:atomic-push object (symbol-value '*resurrected*)))

(defun phase-resurrection ()
  ;; Each finalizer keeps its object: the collector must not have reused
  ;; its memory, and the object must stay usable afterwards.
  (let ((n (floor *n* 4)))
    (dotimes (i n)
      (ext:set-finalizer (make-array 4 :initial-contents (list i (* 2 i) (* 3 i) :payload))
                         #'resurrect))
    (collect-until (lambda () (>= (length *resurrected*) n)))
    (format *error-output* "finalizers: ~D of ~D resurrected~%" (length *resurrected*) n)
    (report "resurrecting finalizers ran (at least 90%)" (at-least-90% (length *resurrected*) n))
    ;; Collect again while the resurrected objects are referenced, then
    ;; check every one of them.
    (churn) (ext:gc t) (churn)
    (report "resurrected objects intact after another collection"
            (loop for v in *resurrected*
                  always (let ((i (aref v 0)))
                           (and (eql (aref v 1) (* 2 i))
                                (eql (aref v 2) (* 3 i))
                                (eq (aref v 3) :payload)))))
    (setf *resurrected* nil)))

(defun phase-threads ()
  ;; Garbage with finalizers made by threads that exit before the
  ;; collection; the finalizers then run in the main thread.
  (let* ((per-thread (floor *n* 4))
         (procs (loop repeat 4
                      collect (mp:process-run-function
                               "finalizable"
                               (lambda () (make-finalized per-thread '*thread-ran*) :made)))))
    (let ((results (mapcar #'mp:process-join procs))
          (total (* 4 per-thread)))
      (collect-until (lambda () (>= (ran '*thread-ran*) total)))
      (format *error-output* "finalizers: ~D of ~D ran for thread garbage~%"
              (ran '*thread-ran*) total)
      (report "threads made their finalizable garbage" (every (lambda (r) (eq r :made)) results))
      (report "finalizers ran for garbage of exited threads (at least 90%)"
              (at-least-90% (ran '*thread-ran*) total)))))

(phase-garbage-and-kept)
(phase-removed)
(phase-resurrection)
(phase-threads)
(format t "finalizers: done~%")

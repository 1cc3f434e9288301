;;;; A heap limit hit and recovered from (ext:set-limit 'ext:heap-size, on
;;;; Boehm's GC_set_max_heap_size and GC_set_oom_fn).
;;;;
;;;; When an allocation fails, ECL's out-of-memory hook collects, retries,
;;;; then raises the limit by its safety area (1 MiB) and signals
;;;; EXT:STORAGE-EXHAUSTED with a CONTINUE restart; continuing raises the
;;;; limit by half and retries. The phases: hit the limit and unwind
;;;; (HANDLER-CASE), drop the data and allocate again under the raised
;;;; limit, continue through the restart until the data fits, then lift the
;;;; limit and allocate past it. How many arrays fit under a limit depends
;;;; on the collector's heap layout, so the checks are ranges; the loops are
;;;; bounded so that a collector that ignores the limit fails instead of
;;;; eating the machine's memory. Loaded by run_workload.py, which defines
;;;; *scale* (:test or :bench).

(defparameter *limit-mib*
  (ecase *scale*
    (:test 64)
    (:bench 256)))

(defconstant +mib+ (* 1024 1024))
(defconstant +chunk+ 100000)            ; bytes per array

(defvar *held* nil)

(defun report (label ok)
  (format t "~A: ~:[FAIL~;ok~]~%" label ok))

(defun held-bytes ()
  (* +chunk+ (length *held*)))

(defun allocate-chunk (i)
  (let ((a (make-array +chunk+ :element-type '(unsigned-byte 8) :initial-element (mod i 256))))
    (push a *held*)
    a))

(defun held-intact-p ()
  ;; Newest first: the array pushed as number i holds (mod i 256).
  (loop for a in *held*
        for i downfrom (1- (length *held*))
        always (and (= (aref a 0) (mod i 256))
                    (= (aref a (1- +chunk+)) (mod i 256)))))

(defun phase-hit ()
  (ext:set-limit 'ext:heap-size (* *limit-mib* +mib+))
  (report "limit set" (= (ext:get-limit 'ext:heap-size) (* *limit-mib* +mib+)))
  (let* ((bound (floor (* 4 *limit-mib* +mib+) +chunk+))
         (caught (handler-case
                     (progn (dotimes (i bound) (allocate-chunk i)) nil)
                   (ext:storage-exhausted () t))))
    (format *error-output* "heap-limit: caught ~A with ~D arrays (~,1F MiB) held~%"
            caught (length *held*) (/ (held-bytes) +mib+))
    (report "storage-exhausted signalled before 4x the limit was held" caught)
    (report "at least half the limit was usable" (>= (* 2 (held-bytes)) (* *limit-mib* +mib+)))
    (report "no more than the limit was held" (<= (held-bytes) (* *limit-mib* +mib+)))
    (report "held data intact after the failure" (held-intact-p))
    ;; The hook raised the limit by ECL's 1 MiB safety area.
    (report "limit raised by the safety area"
            (= (ext:get-limit 'ext:heap-size) (+ (* *limit-mib* +mib+) +mib+)))))

(defun phase-recover ()
  (setf *held* nil)
  (ext:gc t)
  (let ((n (floor (* *limit-mib* +mib+) (* 4 +chunk+))))
    (dotimes (i n) (allocate-chunk i))
    (report "a quarter of the limit allocated again after the failure"
            (and (= (length *held*) n) (held-intact-p))))
  (setf *held* nil)
  (ext:gc t))

(defun phase-continue ()
  ;; Twice the (raised) limit, through the CONTINUE restart each time the
  ;; limit is hit.
  (let ((target (floor (* 2 *limit-mib* +mib+) +chunk+))
        (continues 0))
    (handler-bind ((ext:storage-exhausted
                     (lambda (condition)
                       (incf continues)
                       (when (> continues 50)
                         (error "too many restarts"))
                       (let ((restart (find-restart 'continue condition)))
                         (when restart
                           (invoke-restart restart))))))
      (dotimes (i target) (allocate-chunk i)))
    (format *error-output* "heap-limit: ~D continues to hold ~D arrays, limit now ~,1F MiB~%"
            continues target (/ (ext:get-limit 'ext:heap-size) +mib+))
    (report "continue restart let twice the limit be held"
            (and (plusp continues) (= (length *held*) target) (held-intact-p)))
    (report "limit grew past the data held" (> (ext:get-limit 'ext:heap-size) (held-bytes))))
  (setf *held* nil)
  (ext:gc t))

(defun phase-unlimited ()
  ;; A limit of 0 means none (ECL keeps its safety area again).
  (ext:set-limit 'ext:heap-size 0)
  (report "limit lifted" (zerop (ext:get-limit 'ext:heap-size)))
  (let ((n (floor (* 3 *limit-mib* +mib+) +chunk+)))
    (dotimes (i n) (allocate-chunk i))
    (report "three times the old limit held without one"
            (and (= (length *held*) n) (held-intact-p))))
  (setf *held* nil)
  (ext:gc t))

(phase-hit)
(phase-recover)
(phase-continue)
(phase-unlimited)
(format t "heap-limit: done~%")

;;;; ECL threads on the collector: allocating threads, thread churn, objects
;;;; handed between threads, and collections forced while others allocate.
;;;;
;;;; Every thread's result is a checksum of what it built; the main thread
;;;; prints them in thread order after joining, so the output is the same
;;;; whatever the scheduling. Loaded by run_workload.py, which defines
;;;; *scale* (:test or :bench).

(defparameter *params*
  (ecase *scale*
    (:test '(:workers 6 :rounds 30 :waves 40 :producers 3 :items 3000 :gcs 15))
    (:bench '(:workers 8 :rounds 120 :waves 150 :producers 4 :items 12000 :gcs 40))))

(defun param (key) (getf *params* key))

(defun make-tree (depth)
  (if (zerop depth)
      (cons nil nil)
      (cons (make-tree (1- depth)) (make-tree (1- depth)))))

(defun check-tree (tree)
  (if (car tree)
      (+ 1 (check-tree (car tree)) (check-tree (cdr tree)))
      1))

;;; Phase 1: long-running workers, each with its own kinds of garbage and a
;;; structure that must survive all of it.
(defun worker (id rounds)
  (let ((sum 0)
        (kept nil)
        (table (make-hash-table :test 'equal)))
    (dotimes (r rounds)
      (incf sum (check-tree (make-tree 10)))
      (push (make-string 64 :initial-element (code-char (+ 65 (mod (+ id r) 26)))) kept)
      (dotimes (k 150)
        (setf (gethash (format nil "~D/~D/~D" id r k) table) (list r k)))
      (let ((v (make-array 500)))
        (dotimes (k 500) (setf (aref v k) (* k id)))
        (incf sum (reduce #'+ v))))
    (let ((table-sum 0))
      (maphash (lambda (key value)
                 (declare (ignore key))
                 (incf table-sum (+ (first value) (second value))))
               table)
      (list id sum (length kept) (reduce #'+ kept :key (lambda (s) (char-code (char s 63))))
            (hash-table-count table) table-sum))))

(defun phase-workers ()
  (let* ((n (param :workers))
         (procs (loop for i below n
                      collect (let ((i i))
                                (mp:process-run-function
                                 (format nil "worker-~D" i)
                                 (lambda () (worker i (param :rounds))))))))
    (dolist (result (mapcar #'mp:process-join procs))
      (format t "worker ~{~D: sum ~D kept ~D chars ~D table ~D/~D~}~%" result))))

;;; Phase 2: many short-lived threads, a few at a time, so that threads
;;; register and unregister with the collector while it runs.
(defun phase-churn ()
  (let ((total 0) (threads 0))
    (dotimes (wave (param :waves))
      (let ((procs (loop for j below 4
                         collect (let ((seed (+ (* wave 4) j)))
                                   (mp:process-run-function
                                    "churn"
                                    (lambda ()
                                      (let ((l (loop for k below 2000 collect (list k seed))))
                                        (check-tree (make-tree 6))
                                        (reduce #'+ l :key #'second))))))))
        (dolist (p procs)
          (incf total (mp:process-join p))
          (incf threads))))
    (format t "churn: ~D threads, total ~D~%" threads total)))

;;; Phase 3: producers hand freshly allocated vectors to a consumer through
;;; a queue under a lock and a condition variable; the only reference to an
;;; item is in the queue while it waits. A collector thread forces
;;; collections all along.
(defun phase-handoff ()
  (let* ((lock (mp:make-lock :name "queue"))
         (cv (mp:make-condition-variable))
         (queue nil)
         (done-producers 0)
         (nproducers (param :producers))
         (items (param :items))
         (stop nil)
         (collector (mp:process-run-function
                     "collector"
                     (lambda ()
                       ;; At least one collection, however fast the others are.
                       (loop for n from 1
                             do (ext:gc t) (sleep 0.01)
                             until (or stop (>= n (param :gcs))))
                       :collector-done)))
         (consumer (mp:process-run-function
                    "consumer"
                    (lambda ()
                      (let ((sum 0) (count 0))
                        (loop
                          (let ((item nil))
                            (mp:with-lock (lock)
                              (loop while (and (null queue) (< done-producers nproducers))
                                    do (mp:condition-variable-wait cv lock))
                              (when (and (null queue) (= done-producers nproducers))
                                (return (list count sum)))
                              (setf item (pop queue)))
                            (incf count)
                            (incf sum (reduce #'+ (cdr item)))
                            (unless (= (reduce #'+ (cdr item)) (* 10 (car item)))
                              (error "corrupt item ~D" (car item)))))))))
         (producers (loop for p below nproducers
                          collect (let ((p p))
                                    (mp:process-run-function
                                     "producer"
                                     (lambda ()
                                       (dotimes (i items)
                                         (let* ((n (+ (* p items) i))
                                                (item (cons n (make-list 10 :initial-element n))))
                                           (make-string 100) ; garbage between handoffs
                                           (mp:with-lock (lock)
                                             (push item queue)
                                             (mp:condition-variable-signal cv))))
                                       (mp:with-lock (lock)
                                         (incf done-producers)
                                         (mp:condition-variable-broadcast cv))
                                       p))))))
    (mapc #'mp:process-join producers)
    (destructuring-bind (count sum) (mp:process-join consumer)
      (setf stop t)
      (format t "handoff: ~D items, sum ~D, collector ~(~A~)~%"
              count sum (mp:process-join collector)))))

(phase-workers)
(phase-churn)
(phase-handoff)
(format t "threads: done~%")

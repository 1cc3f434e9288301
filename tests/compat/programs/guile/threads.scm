;;;; Threads (each one registered with the collector: GC_register_my_thread,
;;;; and blocking calls through GC_do_blocking): workers allocating while
;;;; another thread calls (gc) in a loop and another sleeps and wakes, many
;;;; short-lived threads, a producer and consumers under a mutex and a
;;;; condition variable, futures, par-map and n-par-map. Every result is
;;;; joined and printed; how many collections ran goes to standard error.

(use-modules (ice-9 threads)
             (ice-9 futures)
             (ice-9 atomic)
             (srfi srfi-1))

(define (say fmt . args)
  ;; Flushed, so that a crash shows which part it came after.
  (apply format #t fmt args)
  (force-output))

(define (make-tree depth)
  (if (= depth 0)
      (cons #f #f)
      (cons (make-tree (- depth 1)) (make-tree (- depth 1)))))

(define (check tree)
  (if (car tree) (+ 1 (check (car tree)) (check (cdr tree))) 1))

(define (worker id rounds)
  ;; Trees, a hash table and strings; a checksum of what it built.
  (let ((table (make-hash-table))
        (keep (make-tree 8)))
    (let loop ((r 0) (acc 0))
      (if (= r rounds)
          (+ acc (check keep) (hash-count (const #t) table))
          (begin
            (hash-set! table (string-append "w" (number->string id) "-" (number->string r))
                       (make-vector 4 r))
            (loop (+ r 1)
                  (+ acc
                     (check (make-tree (+ 4 (modulo (+ r id) 5))))
                     (string-length (number->string (* r 1000003 (+ id 1)) 7)))))))))

;; Workers while a thread collects in a loop and another sleeps.
(define done (make-atomic-box #f))
(define collections (make-atomic-box 0))
(define collector
  (call-with-new-thread
   (lambda ()
     ;; At least one collection, however soon the workers finish.
     (let loop ()
       (gc)
       (atomic-box-set! collections (+ 1 (atomic-box-ref collections)))
       (usleep 2000)
       (unless (atomic-box-ref done)
         (loop))))))
(define sleeper
  (call-with-new-thread
   (lambda ()
     (let loop ((naps 0) (acc '()))
       (if (atomic-box-ref done)
           (length acc)
           (begin
             (usleep 1000)
             (loop (+ naps 1) (cons (make-string 100 #\z) (if (> (length acc) 50) '() acc)))))))))
(define worker-count 4)
(define rounds (pick 1500 12000))
(define workers
  (map (lambda (id) (call-with-new-thread (lambda () (worker id rounds))))
       (iota worker-count)))
(define results (map join-thread workers))
(atomic-box-set! done #t)
(join-thread collector)
(join-thread sleeper)
(note "threads: ~a collections by the collecting thread~%" (atomic-box-ref collections))
(say "workers: ~a~%" results)
(report "workers agree with a run in this thread"
        (equal? results (map (lambda (id) (worker id rounds)) (iota worker-count))))
(report "collecting thread ran at least once" (> (atomic-box-ref collections) 0))

;; Many short-lived threads, a few at a time.
(define short-lived (pick 300 3000))
(define short-results
  (let loop ((i 0) (acc '()))
    (if (= i short-lived)
        (reverse acc)
        (let ((batch (map (lambda (k)
                            (let ((n (+ i k)))
                              (call-with-new-thread
                               (lambda () (check (make-tree (modulo n 7)))))))
                          (iota 10))))
          (loop (+ i 10) (append (reverse (map join-thread batch)) acc))))))
(say "short-lived threads: ~a joined, sum ~a~%"
        (length short-results) (fold + 0 short-results))

;; A producer and three consumers under a mutex and a condition variable.
(define items (pick 20000 200000))
(define queue '())
(define produced-all #f)
(define lock (make-mutex))
(define ready (make-condition-variable))
(define (consumer)
  (let loop ((sum 0) (count 0))
    (lock-mutex lock)
    (let wait ()
      (when (and (null? queue) (not produced-all))
        (wait-condition-variable ready lock)
        (wait)))
    (if (null? queue)
        (begin (unlock-mutex lock) (cons sum count))
        (let ((item (car queue)))
          (set! queue (cdr queue))
          (unlock-mutex lock)
          (loop (+ sum (vector-ref item 0)) (+ count 1))))))
(define consumers (list-tabulate 3 (lambda (i) (call-with-new-thread consumer))))
(do ((i 0 (+ i 1))) ((= i items))
  (with-mutex lock
    (set! queue (cons (make-vector 3 i) queue))
    (signal-condition-variable ready)))
(with-mutex lock
  (set! produced-all #t)
  (broadcast-condition-variable ready))
(let ((totals (map join-thread consumers)))
  (say "consumers: ~a items, sum ~a~%"
          (fold + 0 (map cdr totals)) (fold + 0 (map car totals))))

;; Futures.
(define (fib n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))
(define futures (map (lambda (i) (future (cons i (fib (+ 12 (modulo i 8)))))) (iota (pick 40 200))))
(say "futures: ~a~%" (fold + 0 (map (lambda (f) (cdr (touch f))) futures)))
(define nested (future (map touch (map (lambda (i) (future (make-list i i))) (iota 30)))))
(say "nested futures: ~a~%" (fold + 0 (map length (touch nested))))

;; par-map, n-par-map, n-par-for-each.
(define squares (par-map (lambda (x) (check (make-tree (modulo x 9)))) (iota (pick 400 3000))))
(say "par-map: ~a results, sum ~a~%" (length squares) (fold + 0 squares))
(define strings (n-par-map 3 (lambda (x) (string-append (number->string x) "/" (make-string (modulo x 50) #\s)))
                           (iota (pick 5000 50000))))
(say "n-par-map: ~a results, total length ~a~%"
        (length strings) (fold + 0 (map string-length strings)))
(define counter 0)
(define counter-lock (make-mutex))
(n-par-for-each 4 (lambda (x) (with-mutex counter-lock (set! counter (+ counter x))))
                (iota (pick 5000 50000)))
(say "n-par-for-each: ~a~%" counter)

;; Thread-local state: fluids and parameters.
(define depth-fluid (make-fluid 0))
(define label (make-parameter "main"))
(define locals
  (map join-thread
       (map (lambda (i)
              (call-with-new-thread
               (lambda ()
                 (with-fluids ((depth-fluid i))
                   (parameterize ((label (string-append "thread " (number->string i))))
                     (gc)
                     (list (fluid-ref depth-fluid) (label)))))))
            (iota 5))))
(say "fluids and parameters: ~s, main: ~a ~s~%" locals (fluid-ref depth-fluid) (label))

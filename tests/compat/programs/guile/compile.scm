;;;; compile-file of modules found on the load path (Debian's, under
;;;; /usr/share/guile/3.0, and ours under $WORK/src), at the default
;;;; optimization level, each into OUT-DIR/<name>.go. Arguments after the
;;;; scale: OUT-DIR, then the sources' names relative to the load path.
;;;; run_workload.py prints the sha256 of every .go: it must be the same
;;;; on any collector.

(use-modules (system base compile))

(define args (cddr (command-line)))
(define out-dir (car args))

(for-each
 (lambda (name)
   (let ((source (search-path %load-path name))
         (output (string-append out-dir "/" (substring name 0 (- (string-length name) 4)) ".go")))
     (format #t "compiling ~a~%" name)
     (force-output)
     (compile-file source #:output-file output)
     (format #t "wrote ~a~%" output)))
 (cdr args))

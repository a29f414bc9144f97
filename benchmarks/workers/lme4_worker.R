# lme4 worker for benchmarks/run.py (same protocol as the Python workers, see
# benchmarks/workerlib.py): arguments key=value (cell, formula, reml, kind = csv | bin,
# path, levels, n, J, repeats, budget); prints READY after loading the data, times a
# warm-up lmer() fit and up to `repeats` more, then prints one line "RESULT {json}".
# Only base R and lme4 are needed (JSON is written by hand).

opt <- list()
for (a in commandArgs(trailingOnly = TRUE)) {
  eq <- regexpr("=", a, fixed = TRUE)
  opt[[substr(a, 1, eq - 1)]] <- substr(a, eq + 1, nchar(a))
}

to_json <- function(x) {
  if (is.null(x) || (length(x) == 1 && is.na(x))) return("null")
  if (is.list(x)) {
    items <- vapply(names(x), function(k) paste0(to_json(k), ":", to_json(x[[k]])), "")
    return(paste0("{", paste(items, collapse = ","), "}"))
  }
  if (length(x) == 0) return("[]")
  vals <- if (is.character(x)) {
    paste0("\"", gsub("([\"\\\\])", "\\\\\\1", gsub("[\r\n\t]", " ", x)), "\"")
  } else if (is.logical(x)) {
    ifelse(x, "true", "false")
  } else {
    format(x, digits = 15, scientific = FALSE, trim = TRUE)
  }
  if (length(x) == 1 && is.null(attr(x, "array"))) vals else paste0("[", paste(vals, collapse = ","), "]")
}
as_array <- function(x) structure(x, array = TRUE)

status_mb <- function(key) {
  line <- grep(paste0("^", key, ":"), readLines("/proc/self/status"), value = TRUE)
  if (length(line) == 0) return(NA)
  as.numeric(strsplit(trimws(sub("^[^:]*:", "", line)), " +")[[1]][1]) / 1024
}

now <- function() as.numeric(Sys.time())  # sub-millisecond wall clock

reset_peak <- function() {
  tryCatch({ writeLines("5", "/proc/self/clear_refs"); TRUE }, condition = function(e) FALSE)
}

load_data <- function(opt) {
  if (opt$kind == "bin") {
    n <- as.integer(opt$n)
    rd <- function(col, what, size) {
      readBin(file.path(opt$path, paste0(col, ".bin")), what, n = n, size = size, endian = "little")
    }
    df <- data.frame(y = rd("y", "double", 8))
    for (k in 1:9) df[[paste0("x", k)]] <- rd(paste0("x", k), "double", 8)
    df$g <- structure(rd("g", "integer", 4) + 1L, levels = as.character(seq_len(as.integer(opt$J)) - 1L),
                      class = "factor")
    return(df)
  }
  lv <- read.delim(opt$levels, colClasses = "character", quote = "", na.strings = character())
  cls <- setNames(rep("character", length(unique(lv$column))), unique(lv$column))
  df <- read.csv(opt$path, colClasses = cls)
  for (col in names(df)) {
    if (col %in% names(cls)) df[[col]] <- factor(df[[col]], levels = lv$level[lv$column == col])
    else df[[col]] <- as.numeric(df[[col]])
  }
  df
}

run <- function(opt) {
  out <- list(tool = "lme4", cell = opt$cell)
  res <- tryCatch({
    suppressPackageStartupMessages(library(lme4))
    out$version <- paste0(packageVersion("lme4"), " (", R.version$version.string, ")")
    out$blas <- as_array(paste("R BLAS:", basename(extSoftVersion()[["BLAS"]])))
    df <- load_data(opt)
    out$n <- nrow(df)
    out$df_mb <- as.numeric(object.size(df)) / 2^20
    out$rss_loaded_mb <- status_mb("VmRSS")
    out$peak_excludes_load <- reset_peak()
    cat("READY\n"); flush(stdout())
    form <- as.formula(opt$formula)
    reml <- opt$reml == "TRUE"
    warns <- character()
    fit1 <- function() {
      withCallingHandlers(lmer(form, data = df, REML = reml),
        warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
        message = function(m) invokeRestart("muffleMessage"))
    }
    repeats <- as.integer(opt$repeats); budget <- as.numeric(opt$budget)
    start <- now()
    fit <- fit1()
    warmup <- now() - start
    times <- numeric()
    while (length(times) < repeats) {
      last <- if (length(times)) times[length(times)] else warmup
      if (now() - start + last > 0.9 * budget) break
      fit <- NULL
      t0 <- now()
      fit <- fit1()
      times <- c(times, now() - t0)
    }
    note <- NA
    if (length(times) < repeats) note <- sprintf("%d of %d repeats within budget", length(times), repeats)
    if (length(times) == 0) { times <- warmup; note <- "warm-up fit only (slow)" }
    out$times <- as_array(times)
    out$median <- median(times)
    out$warmup <- warmup
    out$note <- note
    out$peak_rss_mb <- status_mb("VmHWM")
    out$warnings <- as_array(unique(substr(warns, 1, 120)))
    out$criterion <- if (reml) REMLcrit(fit) else deviance(fit)
    out$evals <- fit@optinfo$feval
    out$optimizer <- fit@optinfo$optimizer
    out
  }, error = function(e) { out$error <- conditionMessage(e); out })
  res
}

cat("RESULT", to_json(run(opt)), "\n")

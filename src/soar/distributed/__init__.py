"""Student pools that map StudentJobs onto workers: in this process, or Ray actors."""

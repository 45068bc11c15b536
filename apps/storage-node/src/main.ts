console.log('storage-node');
